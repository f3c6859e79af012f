"""``report --cross-check``: two counts from the function's own logs beside ``EnvironmentInit``.

Lambda writes an ``INIT_START`` line for every init it starts, and each execution environment
writes to a log stream of its own, so a user can check our count on AWS without trusting us:

- ``count_init_start_lines(logs, log_group, start, end, version)``: a CloudWatch Logs Insights
  query (StartQuery, then GetQueryResults until it completes) counting the ``INIT_START`` lines
  (text log format) and ``platform.initStart`` records (JSON log format) in the window;
- ``count_streams_created(logs, log_group, start, end, version)``: DescribeLogStreams (paginated,
  newest events first) counting the streams created in the window.

In a custom log group (``LoggingConfig.LogGroup``), which several functions may share, Lambda
names each stream ``YYYY/MM/DD/<function_name>[<function_version>][<environment GUID>]`` (AWS,
"Configuring CloudWatch log groups", docs/aws.md), so both counts keep the function's own streams
and lines only: those whose stream name holds ``/<function>[`` (``/<function>[<version>]`` for a
version). In the default group ``/aws/lambda/<function>`` every stream is the function's, named
``YYYY/MM/DD/[<version>]<GUID>``.

Where they legitimately differ from ``EnvironmentInit`` is listed in ``DIFFERENCES`` (and in
docs/report.md). IAM: ``logs:StartQuery``, ``logs:GetQueryResults``, ``logs:DescribeLogStreams``.
Logs Insights bills the bytes it scans.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from concurrency_observer.aws.session import aws_errors, error_code
from concurrency_observer.errors import AwsError

# Text format: "INIT_START Runtime Version: ..."; JSON format: {"type":"platform.initStart",...}.
INIT_START_QUERY: Final = (
    'filter @message like /^INIT_START/ or @message like /"type":"platform\\.initStart"/'
)
QUERY_DONE: Final = ("Complete", "Failed", "Cancelled", "Timeout", "Unknown")
# Streams are listed newest event first; once a stream's last event is this much older than the
# window start, no later stream can have been created in the window. The margin covers
# lastEventTimestamp, which CloudWatch Logs updates eventually (not at once).
_STREAM_SCAN_MARGIN: Final = timedelta(hours=1)

DIFFERENCES: Final = (
    "SnapStart: a restored environment logs RESTORE_START, not INIT_START (the version's "
    "INIT_START is logged once, when its snapshot is made at publish time), and its stream is new",
    "resets: after an invoke times out or the runtime crashes, Lambda re-initializes the same "
    "environment: a new INIT_START and a new EnvironmentInit, but no new log stream",
    "window edges: a stream is counted by its creation time, an INIT_START line by its own "
    "time; an environment born just before the window start logs into a stream created "
    "before it, and lines can reach CloudWatch Logs after the window's end",
    "failed inits: Lambda logs INIT_START for an init that then fails or times out, where the "
    "extension may not have started or delivered",
)


def log_group_of(function_name: str) -> str:
    """The function's default log group (a custom one is set in its logging configuration)."""
    return f"/aws/lambda/{function_name}"


def stream_marker(function_name: str, version: str | None, shared: bool) -> str | None:
    """What the function's own stream names hold: ``/<function>[`` (plus ``<version>]``) in a
    custom group, ``[<version>]`` in the default one; None when every stream is the function's."""
    if shared:
        return f"/{function_name}[" + ("" if version is None else f"{version}]")
    return None if version is None else f"[{version}]"


def _stream_filter(marker: str | None) -> str:
    if marker is None:
        return ""
    # A regular expression of the literal marker ("/" and brackets escaped for Logs Insights).
    pattern = re.escape(marker).replace("/", "\\/")
    return f" | filter @logStream like /{pattern}/"


@dataclass(frozen=True)
class CrossCheck:
    """The three counts for the window, and what could not be counted (with why)."""

    log_group: str
    environment_init: int
    init_start_lines: int | None
    log_streams_created: int | None
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The ``cross_check`` object of the report's JSON document."""
        return {
            "log_group": self.log_group,
            "environment_init": self.environment_init,
            "init_start_lines": self.init_start_lines,
            "log_streams_created": self.log_streams_created,
            "notes": list(self.notes),
            "legitimate_differences": list(DIFFERENCES),
        }


def count_init_start_lines(
    logs: Any,
    log_group: str,
    start: datetime,
    end: datetime,
    marker: str | None = None,
    *,
    timeout: float = 120.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int | None:
    """The ``INIT_START`` lines in ``[start, end)`` in streams whose name holds ``marker``
    (``stream_marker``; None: every stream); ``None`` if the query did not complete."""
    query = f"{INIT_START_QUERY}{_stream_filter(marker)} | stats count(*) as initStarts"
    with aws_errors("logs:StartQuery"):
        query_id = logs.start_query(
            logGroupName=log_group,
            # Insights takes whole epoch seconds, both ends inclusive.
            startTime=int(start.timestamp()),
            endTime=int(end.timestamp()) - 1,
            queryString=query,
        )["queryId"]
    deadline = clock() + timeout
    delay = 0.5
    while True:
        with aws_errors("logs:GetQueryResults"):
            response = logs.get_query_results(queryId=query_id)
        status = response.get("status")
        if status in QUERY_DONE:
            break
        if clock() >= deadline:
            return None
        sleep(delay)
        delay = min(delay * 2, 5.0)
    if status != "Complete":
        return None
    for row in response.get("results", []):
        for cell in row:
            if cell.get("field") == "initStarts":
                return int(float(cell.get("value", "0")))
    return 0  # no line matched: stats over nothing returns no row


def count_streams_created(
    logs: Any, log_group: str, start: datetime, end: datetime, marker: str | None = None
) -> int:
    """Log streams created in ``[start, end)`` whose name holds ``marker`` (``stream_marker``;
    None: every stream)."""
    start_ms, end_ms = start.timestamp() * 1000, end.timestamp() * 1000
    stop_ms = (start - _STREAM_SCAN_MARGIN).timestamp() * 1000
    count = 0
    with aws_errors("logs:DescribeLogStreams"):
        paginator = logs.get_paginator("describe_log_streams")
        pages = paginator.paginate(logGroupName=log_group, orderBy="LastEventTime", descending=True)
        for page in pages:
            for stream in page.get("logStreams", []):
                last = stream.get("lastEventTimestamp", stream.get("creationTime", 0))
                if last < stop_ms:
                    return count
                created = stream.get("creationTime", 0)
                if start_ms <= created < end_ms and (
                    marker is None or marker in stream.get("logStreamName", "")
                ):
                    count += 1
    return count


def cross_check(
    logs: Any,
    function_name: str,
    environment_init: int,
    *,
    start: datetime,
    end: datetime,
    version: str | None = None,
    log_group: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> CrossCheck:
    """Both counts for the window, of the function's own streams; a missing log group gives
    ``None`` counts and a note."""
    group = log_group or log_group_of(function_name)
    shared = group != log_group_of(function_name)
    marker = stream_marker(function_name, version, shared)
    notes: list[str] = []
    if shared:
        notes.append(
            f"{group} is a custom log group: counted only the streams named "
            f"YYYY/MM/DD/{function_name}[{version or '<version>'}][...], the function's own"
        )
    try:
        streams: int | None = count_streams_created(logs, group, start, end, marker)
        lines = count_init_start_lines(logs, group, start, end, marker, sleep=sleep)
    except AwsError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        notes.append(f"log group {group} not found: has the function logged in this region?")
        return CrossCheck(group, environment_init, None, None, tuple(notes))
    if lines is None:
        notes.append("the Logs Insights query did not complete in time; run it again")
    return CrossCheck(group, environment_init, lines, streams, tuple(notes))
