"""Read environment records back from the function's log group: FilterLogEvents, parse, dedupe.

The extension writes one record per environment on stdout at SHUTDOWN (``environment_record``);
Lambda delivers stdout to the function's log group, one stream per environment. This module reads
them back, the same way on AWS and against the local moto server:

- ``function_log_group(lambda_client, function_name)``: the function's ``LoggingConfig.LogGroup``
  when GetFunctionConfiguration names one (and is allowed), else ``/aws/lambda/<function>``.
- ``read_records(logs, log_group, start, end)``: FilterLogEvents (boto3's paginator) over the
  events stamped in ``[start, end + DELIVERY_SLACK]`` with ``RECORD_FILTER_PATTERN``; every record
  line parsed and validated, the rest ignored, duplicates (one function's ``environmentId`` twice)
  dropped; each record's log stream and size kept (``RecordScan``).
- ``RecordScan.of_function(name, version)``: the one rule for whose record it is (its own
  ``functionName``, and ``functionVersion`` when asked); other functions' records are counted.
- ``check_line(message)`` / ``parse_record(message)``: one log event's message as a record, or
  None (with the reason it was refused, for a line that looked like a record). Never raises: the
  line's length and nesting are bounded before decoding, every decoder error is caught, and the
  record contract's validator (``environment_record.check_record``) decides.

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
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final

from concurrency_observer import environment_record as rec
from concurrency_observer.aws.session import aws_errors, error_code
from concurrency_observer.errors import AwsError
from concurrency_observer.figures.platform_lines import FILTER_TERMS, accounts
from concurrency_observer.figures.record_scan import RecordScan

RECORD_FILTER_PATTERN: Final = f'"{rec.MARKER_KEY}"'
# The records and the platform's own lines (figures.platform_lines) in one scan (AWS ORs ``?``).
# moto does not parse ``?`` and returns every event (then the parsers select the same lines).
RECORD_AND_PLATFORM_PATTERN: Final = " ".join(f'?"{t}"' for t in (rec.MARKER_KEY, *FILTER_TERMS))
# Lambda stamps an event when it receives the line; a record written at a shutdown a moment
# before the window's end may be stamped just after it.
DELIVERY_SLACK: Final = timedelta(minutes=2)
# The work one line may cost: a record is about 500 characters (twice that with two names at
# MAX_TEXT_LENGTH, a little more wrapped in Lambda's JSON log format), so a longer line is refused
# before it is decoded; and a record is one object, at most wrapped in one or two more (JSON log
# format), so deeper nesting is refused before the decoder recurses into it.
MAX_LINE_LENGTH: Final = 4096
MAX_DEPTH: Final = 4
# A JSON-format line wraps the record as its ``message``, an object or a string of JSON; a string
# of JSON could wrap again: at most this many wrappers are opened, one after another.
MAX_WRAPPERS: Final = 2
# A string (an unterminated one runs to the end, so the scan stays linear) or a bracket.
_TOKEN: Final = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


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


def _depth(text: str) -> int:
    """The deepest nesting of objects and arrays in ``text`` (strings skipped), without decoding."""
    opened = text.count("{") + text.count("[")
    if opened <= MAX_DEPTH:  # a record's line: no deeper than its brackets, whatever the strings
        return opened
    depth = deepest = 0
    for token in _TOKEN.finditer(text):
        found = token.group()
        if found in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif found in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number a record holds")


# One decoder for every line (``json.loads`` with an option builds a new one per call).
_DECODER: Final = json.JSONDecoder(parse_constant=_refuse_constant)


def _decode(text: str) -> tuple[object, str | None]:
    """``text`` (from its first ``{``) as JSON, within the bounds; ``(None, why)`` when refused.

    Every error the decoder can raise is caught: malformed or cut JSON, an integer of too many
    digits (ValueError), a recursion it should never reach past ``_depth`` (RecursionError), a
    float beyond range (it decodes as infinity, which the validator refuses), NaN and Infinity
    (refused here). Lone surrogates decode as text, which the validator refuses.
    """
    if len(text) > MAX_LINE_LENGTH:
        return None, rec.REFUSED_TOO_LONG
    if _depth(text) > MAX_DEPTH:
        return None, rec.REFUSED_TOO_DEEP
    try:
        return _DECODER.decode(text), None
    except (ValueError, RecursionError, OverflowError, TypeError, MemoryError):
        return None, rec.REFUSED_MALFORMED


def looks_like_record(message: str) -> bool:
    """Whether a line claims to be a record: the marker word (what the filter pattern selects)
    and an object to hold it. A line without ``{`` is ordinary text that names the word."""
    return rec.MARKER_KEY in message and "{" in message


def check_line(
    message: str, *, not_before_ms: int | None = None, not_after_ms: int | None = None
) -> tuple[dict[str, Any] | None, str | None]:
    """One log event's message as a record: ``(record, None)``, or ``(None, why)`` where ``why``
    is a ``REFUSED_*`` reason for a line that looked like a record and None for any other line.

    The record is the JSON object from the line's first ``{``, or the object (or string of JSON)
    a Lambda JSON-format line wraps as its ``message``, unwrapped one level at a time, at most
    ``MAX_WRAPPERS`` deep; then ``environment_record.check_record``. Never raises.
    """
    if not isinstance(message, str) or not looks_like_record(message):
        return None, None
    document, refused = _decode(message[message.find("{") :])
    for _ in range(MAX_WRAPPERS):
        if refused is not None or not isinstance(document, dict) or rec.MARKER_KEY in document:
            break
        wrapped = document.get("message")
        if isinstance(wrapped, str):
            start = wrapped.find("{")
            document, refused = _decode(wrapped[start:]) if start >= 0 else (None, None)
        else:
            document = wrapped
    if refused is not None:
        return None, refused
    if not isinstance(document, dict) or rec.MARKER_KEY not in document:
        return None, rec.REFUSED_MALFORMED
    record, refused = rec.check_record(
        document, not_before_ms=not_before_ms, not_after_ms=not_after_ms
    )
    return record, refused


def parse_record(message: str) -> dict[str, Any] | None:
    """The record in one log event's message, or None (``check_line`` without the reason)."""
    return check_line(message)[0]


def _utf8_bytes(message: str) -> int:
    # A lone surrogate cannot be encoded strictly; the size must still be counted, not raise.
    return len(message.encode("utf-8", "surrogatepass"))


def collect(
    log_group: str,
    events: Iterable[Mapping[str, Any]],
    pages: int = 0,
    *,
    not_before_ms: int | None = None,
    not_after_ms: int | None = None,
) -> RecordScan:
    """Parse, validate and dedupe log events (FilterLogEvents' ``events``) into a ``RecordScan``.

    ``not_before_ms``/``not_after_ms``: the span a record's instants must lie in
    (``environment_record.check_record``).
    """
    records: dict[tuple[str, str], dict[str, Any]] = {}
    streams: dict[str, str] = {}
    events = list(events)
    sizes: dict[str, int] = {}
    refused: Counter[str] = Counter()
    matched = duplicates = returned = total_bytes = 0
    for event in events:
        matched += 1
        message = event.get("message", "")
        returned += _utf8_bytes(message) if isinstance(message, str) else 0
        record, why = check_line(
            message if isinstance(message, str) else "",
            not_before_ms=not_before_ms,
            not_after_ms=not_after_ms,
        )
        if record is None:
            if why is not None:
                refused[why] += 1
            continue
        # A duplicate is the same function's environment seen again: another function's line
        # (echoed, or forged) with the same id cannot displace it.
        key = (str(record[rec.FUNCTION_NAME]), str(record[rec.ENVIRONMENT_ID]))
        if key in records:
            duplicates += 1
            continue
        records[key] = record
        environment_id = key[1]
        size = _utf8_bytes(message)
        total_bytes += size
        sizes.setdefault(environment_id, size)
        stream = event.get("logStreamName")
        if isinstance(stream, str):
            streams.setdefault(environment_id, stream)
    ordered = sorted(records.values(), key=lambda r: (r[rec.SHUTDOWN_TIME], r[rec.ENVIRONMENT_ID]))
    return RecordScan(
        log_group,
        tuple(ordered),
        total_bytes,
        matched,
        duplicates,
        pages,
        log_streams=streams,
        record_sizes=sizes,
        refused=dict(refused),
        platform=accounts(events),
        bytes_returned=returned,
    )


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def read_records(
    logs: Any,
    log_group: str,
    start: datetime,
    end: datetime,
    *,
    page_size: int | None = None,
    platform_lines: bool = False,
) -> RecordScan:
    """Every record stamped in ``[start, end + DELIVERY_SLACK]`` in ``log_group`` (all pages).

    Every function's records in the group: ``RecordScan.of_function`` keeps one function's. A
    record's instants lie within a lifetime before ``start`` and no later than the scan's end
    (``environment_record.check_record``). The caller keeps the records whose ``shutdownTime``
    falls in its window; a missing log group
    is an empty scan (``missing_group``), other errors raise ``AwsError``. ``page_size``: events
    per call (FilterLogEvents' ``limit``; default: as many as AWS gives, up to 10,000 or 1 MB).
    ``platform_lines``: the same calls also return the platform's own lines
    (``RECORD_AND_PLATFORM_PATTERN``), kept per stream in ``RecordScan.platform``.
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
                filterPattern=RECORD_AND_PLATFORM_PATTERN
                if platform_lines
                else RECORD_FILTER_PATTERN,
                PaginationConfig={"PageSize": page_size} if page_size else {},
            ):
                pages += 1
                events.extend(page.get("events", []))
    except AwsError as error:
        if error_code(error) == "ResourceNotFoundException":
            return RecordScan(log_group, missing_group=True)
        raise
    scan = collect(
        log_group,
        events,
        pages,
        not_before_ms=_epoch_ms(start) - rec.MAX_LIFETIME_MS,
        not_after_ms=_epoch_ms(end + DELIVERY_SLACK),
    )
    return replace(scan, platform_scanned=platform_lines)
