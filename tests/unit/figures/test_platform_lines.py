"""The platform's own lines, as Lambda writes them in either log format, read per stream."""

from __future__ import annotations

import json

from concurrency_observer.aws.records import RECORD_AND_PLATFORM_PATTERN
from concurrency_observer.figures.platform_lines import (
    FILTER_TERMS,
    JSON_INIT_REPORT,
    JSON_INIT_START,
    JSON_REPORT,
    accounts,
    parse_line,
)

INIT_START = (
    "INIT_START Runtime Version: nodejs:22.v41\tRuntime Version ARN: "
    "arn:aws:lambda:eu-west-1::runtime:0123456789abcdef"
)
REPORT_COLD = (
    "REPORT RequestId: 7c6f1a52-0000-4000-8000-000000000001\tDuration: 12.34 ms\t"
    "Billed Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 67 MB\t"
    "Init Duration: 145.61 ms\t"
)
REPORT_WARM = (
    "REPORT RequestId: 7c6f1a52-0000-4000-8000-000000000002\tDuration: 2.01 ms\t"
    "Billed Duration: 3 ms\tMemory Size: 128 MB\tMax Memory Used: 67 MB\t"
)
INIT_REPORT = "INIT_REPORT Init Duration: 10000.12 ms\tPhase: init\tStatus: timeout"


def _json(kind: str, record: dict[str, object]) -> str:
    return json.dumps({"time": "2026-12-04T16:55:32.203Z", "type": kind, "record": record})


def test_text_lines_give_the_runtime_version_durations_and_status() -> None:
    """INIT_START's version, REPORT's Init Duration, INIT_REPORT's duration, phase and status."""
    start = parse_line(INIT_START)
    assert start is not None
    assert (start.kind, start.runtime_version) == (JSON_INIT_START, "nodejs:22.v41")
    cold = parse_line(REPORT_COLD)
    assert cold is not None
    assert (cold.kind, cold.init_duration_ms) == (JSON_REPORT, 145.61)
    warm = parse_line(REPORT_WARM)
    assert warm is not None
    assert warm.init_duration_ms is None
    failed = parse_line(INIT_REPORT)
    assert failed is not None
    assert (failed.kind, failed.init_duration_ms) == (JSON_INIT_REPORT, 10000.12)
    assert (failed.status, failed.phase, failed.error_type) == ("timeout", "init", None)


def test_json_lines_give_the_same() -> None:
    """platform.initStart, platform.initReport and platform.report objects."""
    start = parse_line(
        _json(
            "platform.initStart",
            {
                "initializationType": "on-demand",
                "phase": "init",
                "runtimeVersion": "python:3.13.v20",
            },
        )
    )
    assert start is not None
    assert (start.runtime_version, start.init_type) == ("python:3.13.v20", "on-demand")
    report = parse_line(
        _json(
            "platform.report",
            {"requestId": "r", "metrics": {"durationMs": 1.5, "initDurationMs": 88.25}},
        )
    )
    assert report is not None
    assert (report.kind, report.init_duration_ms) == (JSON_REPORT, 88.25)
    failed = parse_line(
        _json(
            "platform.initReport",
            {
                "initializationType": "on-demand",
                "phase": "invoke",
                "status": "error",
                "errorType": "Runtime.ExitError",
                "metrics": {"durationMs": 12.0},
            },
        )
    )
    assert failed is not None
    assert (failed.status, failed.phase, failed.error_type) == (
        "error",
        "invoke",
        "Runtime.ExitError",
    )


def test_other_lines_are_not_platform_lines() -> None:
    """Function output, a record, platform.start, broken JSON: none is read as the platform's."""
    for message in (
        "2026-12-04T16:55:32.203Z\tabc\tINFO\tREPORT RequestId: is in my own log",
        '{"concurrencyObserver":"environment/1","initDurationMs":5}',
        _json("platform.start", {"requestId": "r"}),
        '{"type": "platform.report", "record": ',
        _json("platform.report", {"metrics": {"initDurationMs": -3}}),  # a hostile value
    ):
        found = parse_line(message)
        assert found is None or found.init_duration_ms is None


def test_accounts_fold_each_stream_apart() -> None:
    """Two streams: one cold start invoked twice, one timed-out init; bytes and lines counted."""
    events = [
        {"logStreamName": "a", "message": INIT_START},
        {"logStreamName": "a", "message": REPORT_COLD},
        {"logStreamName": "a", "message": REPORT_WARM},
        {"logStreamName": "b", "message": INIT_START},
        {"logStreamName": "b", "message": INIT_REPORT},
        {"logStreamName": "b", "message": "the function's own line"},
        {"message": INIT_START},  # no stream: cannot be joined, not counted
    ]
    found = accounts(events)
    assert found.lines == 5
    assert found.line_bytes == sum(len(e["message"].encode()) for e in events[:5])
    a, b = found.by_stream["a"], found.by_stream["b"]
    assert (a.init_duration_ms, a.init_status, a.init_phase) == (145.61, "success", "init")
    assert (a.reports, a.felt_cold_start, a.runtime_version) == (2, True, "nodejs:22.v41")
    assert (b.init_duration_ms, b.init_status, b.felt_cold_start) == (10000.12, "timeout", False)


def test_a_stream_without_init_lines_says_nothing_of_its_init() -> None:
    """A provisioned environment's REPORTs carry no Init Duration: duration and status unknown."""
    account = accounts([{"logStreamName": "p", "message": REPORT_WARM}]).by_stream["p"]
    assert (account.init_duration_ms, account.init_status, account.init_phase) == (None, None, None)


def test_the_filter_terms_select_each_init_line_and_no_warm_report() -> None:
    """AWS returns what a term matches: the init lines and cold starts' REPORTs, a few lines per
    environment, not one per invocation (a warm REPORT matches none)."""

    def selected(message: str) -> bool:
        return any(term in message for term in FILTER_TERMS)

    cold_json = _json("platform.report", {"metrics": {"durationMs": 1.5, "initDurationMs": 88.25}})
    warm_json = _json("platform.report", {"metrics": {"durationMs": 1.5}})
    for line in (INIT_START, REPORT_COLD, INIT_REPORT, cold_json):
        assert selected(line), line
    for line in (REPORT_WARM, warm_json, _json("platform.start", {"requestId": "r"})):
        assert not selected(line), line
    assert RECORD_AND_PLATFORM_PATTERN == (
        '?"concurrencyObserver" ?"INIT_START" ?"Init Duration" ?"platform.initStart" '
        '?"platform.initReport" ?"initDurationMs"'
    )
