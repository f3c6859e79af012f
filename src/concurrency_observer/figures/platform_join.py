"""The platform's lines joined to the environment records, by log stream: pure, no AWS.

A record and the platform's lines of its environment share a log stream (Lambda writes both into
the environment's own). ``join(records, streams, lines)`` gives each record the platform's init
duration, init status, error type, phase and runtime version wherever the record has none (the
bash engine, no Telemetry API, a platform event lost before SHUTDOWN). Where both say something
they must agree: a difference is kept as a ``Disagreement`` and shown, never averaged away; the
record's own value stays. Streams with platform lines and no record are counted (an environment
still alive at the window's end, or whose record was lost).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from concurrency_observer import environment_record as rec
from concurrency_observer.figures.platform_lines import PlatformLines, StreamAccount

# The Telemetry API reports durations to the microsecond, the text REPORT line to 0.01 ms.
DURATION_TOLERANCE_MS: Final = 0.01
# Where the filled fields came from, in a record (never written by the extension).
FILLED_FROM: Final = "_platformLines"


@dataclass(frozen=True)
class Disagreement:
    """One field the record and the platform's lines both give, differently."""

    environment_id: str
    stream: str
    field: str
    record: Any
    platform: Any

    def as_dict(self) -> dict[str, Any]:
        """The report document's shape."""
        return {
            "environment_id": self.environment_id,
            "log_stream": self.stream,
            "field": self.field,
            "record": self.record,
            "platform_lines": self.platform,
        }

    def describe(self) -> str:
        """One line: ``<env>: initDurationMs record 120.5, platform lines 131.2``."""
        return (
            f"{self.environment_id}: {self.field} record {self.record}, "
            f"platform lines {self.platform}"
        )


@dataclass(frozen=True)
class PlatformJoin:
    """The records with the platform's account filled in, and what the join found."""

    records: tuple[dict[str, Any], ...]
    streams_with_lines: int = 0
    joined: int = 0  # records whose stream had platform lines
    filled: int = 0  # records given at least one field from the lines
    disagreements: tuple[Disagreement, ...] = ()
    lines_without_record: int = 0  # streams with platform lines and no record


def _values(account: StreamAccount) -> dict[str, Any]:
    """The record fields the account gives (only those it knows)."""
    values = {
        rec.INIT_DURATION_MS: account.init_duration_ms,
        rec.INIT_STATUS: account.init_status,
        rec.INIT_ERROR_TYPE: account.init_error_type,
        rec.INIT_PHASE: account.init_phase,
        rec.RUNTIME_VERSION: account.runtime_version,
    }
    return {name: value for name, value in values.items() if value is not None}


def _agree(name: str, recorded: Any, platform: Any) -> bool:
    if name == rec.INIT_DURATION_MS and isinstance(recorded, int | float):
        return abs(float(recorded) - float(platform)) <= DURATION_TOLERANCE_MS
    return bool(recorded == platform)


def _comparable(record: Mapping[str, Any], account: StreamAccount) -> bool:
    """Whether the lines and the record speak of the same init.

    A held or provisioned init is not in a REPORT's Init Duration: the lines then give no
    duration to compare. A failed init retried in the same stream is a new record per attempt,
    each with its own status: the stream's account is of its last failure, so only a record of
    a failed init is held to it.
    """
    if account.failed_report is not None:
        return record.get(rec.INIT_STATUS) not in (None, "success")
    return True


def _counted(
    record: Mapping[str, Any],
    stream: str | None,
    account: StreamAccount | None,
    lines: PlatformLines,
) -> int | None:
    """The invocations a record without a count gets from its stream's REPORT lines.

    Zero REPORT lines mean zero invocations only where the stream's platform lines are known to
    be written (an init line seen); else, with the lines dropped (JSON at WARN), unknown.
    """
    if record.get(rec.INVOCATIONS) is not None or stream is None:
        return None
    count = lines.reports_by_stream.get(stream)
    if count is None or (count == 0 and account is None):
        return None
    return count


def join(
    records: Sequence[Mapping[str, Any]],
    streams: Mapping[str, str],
    lines: PlatformLines,
) -> PlatformJoin:
    """Fill and check ``records`` (``streams``: each environmentId's log stream) from ``lines``."""
    out: list[dict[str, Any]] = []
    disagreements: list[Disagreement] = []
    joined = filled = 0
    seen: set[str] = set()
    shared = Counter(
        streams[str(r.get(rec.ENVIRONMENT_ID, ""))]
        for r in records
        if str(r.get(rec.ENVIRONMENT_ID, "")) in streams
    )
    for record in records:
        environment = str(record.get(rec.ENVIRONMENT_ID, ""))
        stream = streams.get(environment)
        account = lines.by_stream.get(stream) if stream else None
        merged = dict(record)
        added: list[str] = []
        counted = _counted(record, stream, account, lines)
        if counted is not None:
            merged[rec.INVOCATIONS] = counted
            added.append(rec.INVOCATIONS)
        if account is not None and stream is not None:
            seen.add(stream)
            joined += 1
            values = _values(account)
            if account.failed_report is not None and shared[stream] > 1:
                # Several inits' records in one stream (a failed init retried): which one
                # failed is the records' to say; the lines then give the runtime version only.
                values = {k: v for k, v in values.items() if k == rec.RUNTIME_VERSION}
            for name, value in values.items():
                if record.get(name) is None:
                    merged[name] = value
                    added.append(name)
                elif _comparable(record, account) and not _agree(name, record[name], value):
                    disagreements.append(
                        Disagreement(environment, stream, name, record[name], value)
                    )
        if added:
            merged[FILLED_FROM] = added
            filled += 1
        out.append(merged)
    return PlatformJoin(
        records=tuple(out),
        streams_with_lines=len(lines.by_stream),
        joined=joined,
        filled=filled,
        disagreements=tuple(disagreements),
        lines_without_record=len(set(lines.by_stream) - seen),
    )
