"""Read environment records back from the function's log group: FilterLogEvents, parse, dedupe.

The extension writes one record per environment on stdout at SHUTDOWN (``environment_record``);
Lambda delivers stdout to the function's log group, one stream per environment. This module reads
them back, the same way on AWS and against the local moto server:

- ``function_log_group(lambda_client, function_name)``: the function's ``LoggingConfig.LogGroup``
  when GetFunctionConfiguration names one (and is allowed), else ``/aws/lambda/<function>``.
- ``read_records(logs, log_group, start, end)``: FilterLogEvents (boto3's paginator) over the
  events stamped in ``[start, end + DELIVERY_SLACK]`` with ``RECORD_FILTER_PATTERN``; every record
  line parsed, the rest ignored, duplicates (same ``environmentId``) dropped.
- ``parse_record(message)``: one log event's message as a record, or None.

A record is stamped when Lambda receives it: at the environment's SHUTDOWN, so the window a scan
covers is the window of *shutdowns*. An environment born before the window and shut down inside it
has its record there (with its ``initTime``); one still alive at the window's end has none yet
(``figures.records`` counts those from the metric).

The filter pattern is a quoted term, which AWS matches as an exact, case-sensitive phrase anywhere
in the message, and moto as a substring: it selects the record lines whether Lambda keeps the
line as written (text log format; extensions' stdout) or wraps it as the ``message`` of a JSON
object (JSON log format), where the key's quotes are escaped and a pattern with them would miss.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from concurrency_observer import environment_record as rec
from concurrency_observer.aws.session import aws_errors, error_code
from concurrency_observer.errors import AwsError

RECORD_FILTER_PATTERN: Final = f'"{rec.MARKER_KEY}"'
# Lambda stamps an event when it receives the line; a record written at a shutdown a moment
# before the window's end may be stamped just after it.
DELIVERY_SLACK: Final = timedelta(minutes=2)
_INTEGER_FIELDS: Final = (rec.INIT_TIME, rec.SHUTDOWN_TIME)
_NUMBER_FIELDS: Final = (rec.LIFETIME_MS, rec.IDLE_MS)
_TEXT_FIELDS: Final = (
    rec.FUNCTION_NAME,
    rec.FUNCTION_VERSION,
    rec.INIT_TYPE,
    rec.ENVIRONMENT_ID,
    rec.SHUTDOWN_REASON,
)


def default_log_group(function_name: str) -> str:
    """``/aws/lambda/<function>``: where Lambda writes unless the function names another group."""
    return f"/aws/lambda/{function_name}"


def function_log_group(lambda_client: Any, function_name: str) -> tuple[str, str | None]:
    """The function's log group and, when the default is assumed, why.

    GetFunctionConfiguration's ``LoggingConfig.LogGroup`` names a custom group; without
    ``lambda:GetFunctionConfiguration`` (or for a function this account cannot see), the default
    is used and the second value says so.
    """
    default = default_log_group(function_name)
    try:
        with aws_errors("lambda:GetFunctionConfiguration"):
            configuration = lambda_client.get_function_configuration(FunctionName=function_name)
    except AwsError as error:
        return default, f"log group {default} assumed ({error})"
    group = configuration.get("LoggingConfig", {}).get("LogGroup")
    return (str(group), None) if group else (default, None)


def _record_in(document: object) -> dict[str, Any] | None:
    """``document`` as a record; or the record a Lambda JSON log line wraps as its message."""
    if not isinstance(document, dict):
        return None
    if document.get(rec.MARKER_KEY) == rec.VERSION:
        return document if _well_formed(document) else None
    wrapped = document.get("message")
    if isinstance(wrapped, dict):
        return _record_in(wrapped)
    if isinstance(wrapped, str):
        return parse_record(wrapped)
    return None


def _well_formed(document: Mapping[str, Any]) -> bool:
    """Every field the figures rely on is there with its type (a cut or hostile line is not)."""
    integers = all(
        isinstance(document.get(name), int) and not isinstance(document.get(name), bool)
        for name in _INTEGER_FIELDS
    )
    numbers = all(
        isinstance(document.get(name), int | float) and not isinstance(document.get(name), bool)
        for name in _NUMBER_FIELDS
    )
    texts = all(isinstance(document.get(name), str) for name in _TEXT_FIELDS)
    return integers and numbers and texts


def parse_record(message: str) -> dict[str, Any] | None:
    """The record in one log event's message (a JSON object from its first ``{``), or None."""
    start = message.find("{")
    if start < 0 or rec.MARKER_KEY not in message:
        return None
    try:
        document = json.loads(message[start:])
    except ValueError:
        return None
    return _record_in(document)


@dataclass(frozen=True)
class RecordScan:
    """What one scan of a log group found."""

    log_group: str
    records: tuple[dict[str, Any], ...] = ()
    record_bytes: int = 0  # UTF-8 bytes of the record lines (what their ingestion is billed on)
    events_matched: int = 0  # events the filter pattern returned, records or not
    duplicates: int = 0  # records seen again (same environmentId): dropped
    pages: int = 0  # FilterLogEvents calls made
    missing_group: bool = False  # the log group does not exist

    @property
    def found(self) -> bool:
        """Whether any record was found."""
        return bool(self.records)


def collect(log_group: str, events: Iterable[Mapping[str, Any]], pages: int = 0) -> RecordScan:
    """Parse and dedupe log events (FilterLogEvents' ``events``) into a ``RecordScan``."""
    records: dict[str, dict[str, Any]] = {}
    matched = duplicates = size = 0
    for event in events:
        matched += 1
        message = str(event.get("message", ""))
        record = parse_record(message)
        if record is None:
            continue
        key = str(record[rec.ENVIRONMENT_ID])
        if key in records:
            duplicates += 1
            continue
        records[key] = record
        size += len(message.encode("utf-8"))
    ordered = sorted(records.values(), key=lambda r: (r[rec.SHUTDOWN_TIME], r[rec.ENVIRONMENT_ID]))
    return RecordScan(log_group, tuple(ordered), size, matched, duplicates, pages)


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def read_records(
    logs: Any, log_group: str, start: datetime, end: datetime, *, page_size: int | None = None
) -> RecordScan:
    """Every record stamped in ``[start, end + DELIVERY_SLACK]`` in ``log_group`` (all pages).

    The caller keeps the records whose ``shutdownTime`` falls in its window; a missing log group
    is an empty scan (``missing_group``), other errors raise ``AwsError``. ``page_size``: events
    per call (FilterLogEvents' ``limit``; default: as many as AWS gives, up to 10,000 or 1 MB).
    """
    paginator = logs.get_paginator("filter_log_events")
    events: list[Mapping[str, Any]] = []
    pages = 0
    try:
        with aws_errors("logs:FilterLogEvents"):
            for page in paginator.paginate(
                logGroupName=log_group,
                startTime=_epoch_ms(start),
                endTime=_epoch_ms(end + DELIVERY_SLACK),
                filterPattern=RECORD_FILTER_PATTERN,
                PaginationConfig={"PageSize": page_size} if page_size else {},
            ):
                pages += 1
                events.extend(page.get("events", []))
    except AwsError as error:
        if error_code(error) == "ResourceNotFoundException":
            return RecordScan(log_group, missing_group=True)
        raise
    return collect(log_group, events, pages)
