"""Reading environment records back: every shape Lambda delivers, and FilterLogEvents on moto."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from concurrency_observer import environment_record as rec
from concurrency_observer.aws.records import (
    DELIVERY_SLACK,
    RECORD_FILTER_PATTERN,
    collect,
    default_log_group,
    function_log_group,
    parse_record,
    read_records,
)

# Recent: CloudWatch Logs (and moto) reject events older than 14 days.
T0 = (datetime.now(timezone.utc) - timedelta(hours=2)).replace(microsecond=0)
REGION = "us-east-1"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def record(environment_id: str = "00000000000000a1", **extra: Any) -> dict[str, Any]:
    """A well-formed record of a python engine, lean profile, shut down 60 s after T0."""
    found: dict[str, Any] = {
        rec.MARKER_KEY: rec.VERSION,
        rec.FUNCTION_NAME: "fn",
        rec.FUNCTION_VERSION: "$LATEST",
        rec.INIT_TYPE: "on-demand",
        rec.ENVIRONMENT_ID: environment_id,
        rec.ENGINE: rec.ENGINE_PYTHON,
        rec.METRICS_PROFILE: rec.PROFILE_LEAN,
        rec.INIT_TIME: _ms(T0),
        rec.SHUTDOWN_TIME: _ms(T0 + timedelta(seconds=60)),
        rec.SHUTDOWN_REASON: "spindown",
        rec.LIFETIME_MS: 60_000,
        rec.IDLE_MS: 1_500.5,
    }
    found.update(extra)
    return found


def line(document: dict[str, Any]) -> str:
    """The record as the extension writes it: one compact JSON line."""
    return json.dumps(document, separators=(",", ":"))


def test_a_record_line_is_parsed_as_written() -> None:
    """The extension's own line (text log format) parses to the same fields."""
    assert parse_record(line(record())) == record()


def test_a_record_wrapped_by_lambdas_json_log_format_is_found() -> None:
    """A JSON log line whose message is the record, as a string or an object, yields it."""
    as_text = json.dumps({"timestamp": "2026-12-02T10:01:00Z", "message": line(record())})
    as_object = json.dumps({"level": "INFO", "message": record()})
    assert parse_record(as_text) == record()
    assert parse_record(as_object) == record()


def test_text_before_the_object_is_skipped() -> None:
    """A prefix (a timestamp, a request id) before the JSON object does not hide the record."""
    assert parse_record("2026-12-02T10:01:00Z\t" + line(record())) == record()


@pytest.mark.parametrize(
    "message",
    [
        "START RequestId: 1 Version: $LATEST",
        '{"concurrencyObserver": "environment/99", "functionName": "fn"}',  # a later format
        line({**record(), rec.INIT_TIME: "yesterday"}),  # a field of the wrong type
        line({k: v for k, v in record().items() if k != rec.ENVIRONMENT_ID}),
        line(record())[:-10],  # cut short
        "[concurrency-observer] concurrencyObserver mentioned in a log line",
        '{"message": 42, "concurrencyObserver": 1}',
    ],
)
def test_other_lines_are_not_records(message: str) -> None:
    """Log lines that are not a well-formed record of this format are ignored."""
    assert parse_record(message) is None


def test_collect_drops_duplicates_and_counts_record_bytes() -> None:
    """The same environmentId twice is one record; bytes are the record lines' UTF-8 size."""
    first, second = line(record("a" * 16)), line(record("b" * 16))
    events = [{"message": m} for m in (first, "noise concurrencyObserver", second, first)]
    scan = collect("/aws/lambda/fn", events)
    assert [r[rec.ENVIRONMENT_ID] for r in scan.records] == ["a" * 16, "b" * 16]
    assert scan.duplicates == 1
    assert scan.events_matched == 4
    assert scan.record_bytes == len(first.encode()) + len(second.encode())


@pytest.fixture
def logs() -> Any:
    """A moto CloudWatch Logs client."""
    with mock_aws():
        yield boto3.client("logs", region_name=REGION)


def _put(logs: Any, group: str, stream: str, events: list[tuple[datetime, str]]) -> None:
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": _ms(when), "message": text} for when, text in events],
    )


def test_filter_log_events_reads_every_record_of_the_window_on_moto(logs: Any) -> None:
    """Records in two streams, among other lines, across pages; after endTime (inclusive) not."""
    group = default_log_group("fn")
    logs.create_log_group(logGroupName=group)
    inside = [record(f"{i:016x}") for i in range(7)]
    too_late = record("f" * 16)
    _put(
        logs,
        group,
        "2026/12/02/[$LATEST]" + "1" * 32,
        [(T0 + timedelta(seconds=10), "START RequestId: x")]
        + [(T0 + timedelta(seconds=20 + i), line(r)) for i, r in enumerate(inside[:4])],
    )
    _put(
        logs,
        group,
        "2026/12/02/[$LATEST]" + "2" * 32,
        [(T0 + timedelta(seconds=30 + i), line(r)) for i, r in enumerate(inside[4:])]
        + [(T0 + timedelta(hours=1) + DELIVERY_SLACK + timedelta(milliseconds=1), line(too_late))],
    )
    scan = read_records(logs, group, T0, T0 + timedelta(hours=1), page_size=2)
    assert sorted(r[rec.ENVIRONMENT_ID] for r in scan.records) == sorted(
        r[rec.ENVIRONMENT_ID] for r in inside
    )
    assert scan.pages >= 4  # 7 record events, 2 a page
    assert not scan.missing_group


def test_a_missing_log_group_is_an_empty_scan(logs: Any) -> None:
    """A function that never logged: no records, and the scan says the group is missing."""
    scan = read_records(logs, "/aws/lambda/nobody", T0, T0 + timedelta(hours=1))
    assert scan.missing_group
    assert not scan.found


def test_the_filter_pattern_is_a_quoted_term() -> None:
    """A quoted term: AWS matches it as a phrase anywhere in a message, moto as a substring."""
    assert RECORD_FILTER_PATTERN == '"concurrencyObserver"'


def test_the_log_group_comes_from_the_functions_logging_config() -> None:
    """GetFunctionConfiguration's LoggingConfig.LogGroup wins; access denied keeps the default."""
    client = boto3.client("lambda", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_response(
            "get_function_configuration",
            {"FunctionName": "fn", "LoggingConfig": {"LogGroup": "/custom/fn"}},
            {"FunctionName": "fn"},
        )
        stub.add_client_error(
            "get_function_configuration", service_error_code="AccessDeniedException"
        )
        assert function_log_group(client, "fn") == ("/custom/fn", None)
        group, why = function_log_group(client, "fn")
    assert group == "/aws/lambda/fn"
    assert why is not None
    assert "AccessDeniedException" in why
