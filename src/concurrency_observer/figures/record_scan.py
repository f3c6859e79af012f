"""What one scan of a log group found, and the one rule for whose record it is: no AWS calls.

``aws.records`` fills a ``RecordScan`` from FilterLogEvents, the local harness from its own log
files; ``figures.report_build`` reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from concurrency_observer import environment_record as rec
from concurrency_observer.figures.platform_lines import PlatformLines


def belongs_to(record: Mapping[str, Any], function_name: str, version: str | None = None) -> bool:
    """Whose record it is: its own ``functionName`` is ``function_name`` (and its
    ``functionVersion`` is ``version``, when one is asked). Every reader applies this rule."""
    if record.get(rec.FUNCTION_NAME) != function_name:
        return False
    return version is None or record.get(rec.FUNCTION_VERSION) == version


@dataclass(frozen=True)
class RecordScan:
    """What one scan of a log group found (or the part of it that is one function's).

    ``log_streams`` maps each record's ``environmentId`` to the log stream its line was in (one
    stream per environment on Lambda: where Lambda's own platform lines for it are);
    ``record_sizes`` to its line's UTF-8 bytes. ``refused`` counts the lines that looked like
    records and were not counted, by reason (``environment_record.REFUSED_REASONS``);
    ``other_functions`` the records in the group that belong to other functions.
    """

    log_group: str
    records: tuple[dict[str, Any], ...] = ()
    record_bytes: int = 0  # UTF-8 bytes of the record lines (what their ingestion is billed on)
    events_matched: int = 0  # events the filter pattern returned, records or not
    duplicates: int = 0  # records seen again (same environmentId): dropped
    pages: int = 0  # FilterLogEvents calls made
    missing_group: bool = False  # the log group does not exist
    log_streams: Mapping[str, str] = field(default_factory=dict)
    record_sizes: Mapping[str, int] = field(default_factory=dict)
    refused: Mapping[str, int] = field(default_factory=dict)
    other_functions: int = 0
    platform: PlatformLines = field(default_factory=PlatformLines)  # the platform's own lines
    bytes_returned: int = 0  # UTF-8 bytes of every event's message the calls returned
    platform_scanned: bool = False  # the pattern asked for the platform's lines too

    @property
    def found(self) -> bool:
        """Whether any record was found."""
        return bool(self.records)

    @property
    def refused_total(self) -> int:
        """Lines that looked like records and were refused."""
        return sum(self.refused.values())

    def of_function(self, function_name: str, version: str | None = None) -> RecordScan:
        """The records whose own ``functionName`` is ``function_name`` (and ``functionVersion``
        ``version``, when given): the one rule for whose record it is. Idempotent; the records of
        other functions are counted in ``other_functions``, other versions' are left out."""
        mine = []
        others = 0
        for record in self.records:
            if belongs_to(record, function_name, version):
                mine.append(record)
            elif record[rec.FUNCTION_NAME] != function_name:
                others += 1
        ids = {str(record[rec.ENVIRONMENT_ID]) for record in mine}
        sizes = {k: v for k, v in self.record_sizes.items() if k in ids}
        return replace(
            self,
            records=tuple(mine),
            record_bytes=sum(sizes.values()),
            log_streams={k: v for k, v in self.log_streams.items() if k in ids},
            record_sizes=sizes,
            other_functions=self.other_functions + others,
        )
