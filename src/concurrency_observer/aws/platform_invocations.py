"""Invocations per environment from the platform's REPORT lines, for records that did not count.

An engine registered for SHUTDOWN alone without the Telemetry API (the bash engine on Lambda
Managed Instances, where INVOKE is refused) writes a record without ``invocations``. Lambda still
writes one ``REPORT RequestId: ...`` line (text) or ``platform.report`` event (JSON; the only format
on Managed Instances) per invocation into the environment's stream. ``count_reports`` reads those
in a second FilterLogEvents scan limited to those records' streams (``logStreamNames``, up to 100
a call), so only the environments that need it pay for a line per invocation; the first scan
(``aws.records``) keeps a few lines per environment.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from concurrency_observer import environment_record as rec
from concurrency_observer.aws.session import aws_errors
from concurrency_observer.figures.platform_lines import JSON_REPORT, REPORT, parse_line

REPORT_PATTERN: Final = f'?"{REPORT}" ?"{JSON_REPORT}"'
STREAMS_PER_CALL: Final = 100  # FilterLogEvents' logStreamNames limit
_SLACK: Final = timedelta(minutes=2)


@dataclass(frozen=True)
class ReportCounts:
    """REPORT lines per stream, from the second scan."""

    by_stream: Mapping[str, int] = field(default_factory=dict)
    calls: int = 0
    bytes_returned: int = 0


def uncounted_streams(
    records: Iterable[Mapping[str, Any]], streams: Mapping[str, str]
) -> list[str]:
    """The streams of the records that have no ``invocations``, in a stable order."""
    wanted = {
        streams[key]
        for record in records
        if record.get(rec.INVOCATIONS) is None
        and (key := str(record.get(rec.ENVIRONMENT_ID, ""))) in streams
    }
    return sorted(wanted)


def tally(events: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """REPORT lines per ``logStreamName`` (any other line is not counted)."""
    counts: Counter[str] = Counter()
    for event in events:
        line = parse_line(str(event.get("message", "")))
        stream = event.get("logStreamName")
        if line is not None and line.kind == JSON_REPORT and isinstance(stream, str):
            counts[stream] += 1
    return counts


def count_reports(
    logs: Any, log_group: str, streams: Sequence[str], start: datetime, end: datetime
) -> ReportCounts:
    """Each of ``streams``' REPORT lines stamped in ``[start - 2 min, end + 2 min]``, counted.

    Raises ``AwsError`` as ``aws.records.read_records`` does; the caller decides what is lost.
    """
    counts: Counter[str] = Counter()
    calls = size = 0
    paginator = logs.get_paginator("filter_log_events")
    for first in range(0, len(streams), STREAMS_PER_CALL):
        chunk = list(streams[first : first + STREAMS_PER_CALL])
        with aws_errors("logs:FilterLogEvents"):
            for page in paginator.paginate(
                logGroupName=log_group,
                logStreamNames=chunk,
                startTime=int((start - _SLACK).timestamp() * 1000),
                endTime=int((end + _SLACK).timestamp() * 1000),
                filterPattern=REPORT_PATTERN,
            ):
                calls += 1
                events = page.get("events", [])
                size += sum(len(str(e.get("message", "")).encode("utf-8")) for e in events)
                counts.update(tally(events))
    return ReportCounts({s: counts[s] for s in streams}, calls, size)
