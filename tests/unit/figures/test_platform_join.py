"""The platform's lines joined to the records by log stream, read back from moto's Logs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from moto import mock_aws

from concurrency_observer.aws.records import read_records
from concurrency_observer.aws.report import with_report_counts
from concurrency_observer.figures.platform import platform_figures, platform_section
from concurrency_observer.figures.platform_join import FILLED_FROM, join
from concurrency_observer.figures.record_scan import RecordScan
from concurrency_observer.local.lambda_log_lines import (
    LOG_FORMAT_JSON,
    LOG_FORMAT_TEXT,
    LogSettings,
)
from concurrency_observer.local.log_delivery import LambdaLogDelivery

REGION = "us-east-1"
E1, E2 = "00000000000000e1", "00000000000000e2"  # environment ids: 16 hex digits
GROUP = "/aws/lambda/fn"
INIT = "04 Dec 2026 16:55:32,{ms:03d} [INFO] (rapid) "


def _output(environment: str, duration_ms: float, *, record: dict[str, Any] | None = None) -> str:
    """One environment's RIE output: a waited-for on-demand init, one invocation, its record."""
    request = f"0a1b2c3d-0000-4000-8000-{environment:0>12}"
    now = int(time.time() * 1000)
    document = {
        "concurrencyObserver": "environment/1",
        "functionName": "fn",
        "functionVersion": "$LATEST",
        "initType": "on-demand",
        "environmentId": environment,
        "engine": "bash",
        "metrics": "lean",
        "initTime": now - 5000,
        "shutdownTime": now,
        "shutdownReason": "spindown",
        "lifetimeMs": 5000,
        "idleMs": 4000,
        **(record or {}),
    }
    return "\n".join(
        [
            INIT.format(ms=203) + "INIT START(type: on-demand, phase: init)",
            INIT.format(ms=300) + "INIT RTDONE(status: success)",
            INIT.format(ms=301) + f"INIT REPORT(durationMs: {duration_ms:f})",
            f"START RequestId: {request} Version: $LATEST",
            f"REPORT RequestId: {request}  Duration: 301.25 ms  Billed Duration: 302 ms",
            json.dumps(document),
        ]
    )


@pytest.fixture
def logs() -> Iterator[Any]:
    """A moto CloudWatch Logs client."""
    with mock_aws():
        yield boto3.client("logs", region_name=REGION)


def _scan(
    logs: Any, *outputs: str, log_format: str = LOG_FORMAT_TEXT, level: str = "INFO"
) -> RecordScan:
    delivery = LambdaLogDelivery(
        logs, "fn", log_settings=LogSettings(log_format, level, "bash:rie")
    )
    for output in outputs:
        assert delivery.deliver(output) is not None
    now = datetime.now(timezone.utc)
    return read_records(logs, GROUP, now - timedelta(minutes=1), now, platform_lines=True)


@pytest.mark.parametrize("log_format", [LOG_FORMAT_TEXT, LOG_FORMAT_JSON])
def test_records_without_telemetry_get_the_platforms_init_account(
    logs: Any, log_format: str
) -> None:
    """The bash engine's records: init duration, status, phase, runtime version from the lines."""
    scan = _scan(logs, _output(E1, 97.5), _output(E2, 120.25), log_format=log_format)
    assert set(scan.log_streams) == {E1, E2}
    found = join(scan.records, scan.log_streams, scan.platform)
    by_id = {r["environmentId"]: r for r in found.records}
    assert by_id[E1]["initDurationMs"] == 97.5
    assert by_id[E2]["initDurationMs"] == 120.25
    assert {r["initStatus"] for r in found.records} == {"success"}
    assert {r["initPhase"] for r in found.records} == {"init"}
    assert {r["runtimeVersion"] for r in found.records} == {"bash:rie"}
    assert (found.joined, found.filled, found.disagreements) == (2, 2, ())
    figures = platform_figures(found.records, lines=found)
    assert figures.with_telemetry == 0  # filled, not reported by the Telemetry API
    assert figures.init_duration_by_type["on-demand"].count == 2
    assert platform_section(figures)["platform_lines"]["records_filled"] == 2


def test_a_disagreement_is_shown_and_the_records_value_kept(logs: Any) -> None:
    """Both sources give a duration, 10 ms apart: kept as a disagreement, never averaged."""
    told = {"initDurationMs": 107.5, "initStatus": "success", "initPhase": "init"}
    scan = _scan(logs, _output(E1, 97.5, record=told))
    found = join(scan.records, scan.log_streams, scan.platform)
    assert found.records[0]["initDurationMs"] == 107.5
    assert [(d.field, d.record, d.platform) for d in found.disagreements] == [
        ("initDurationMs", 107.5, 97.5)
    ]
    assert found.records[0][FILLED_FROM] == ["runtimeVersion"]  # only what the record lacked
    assert "initDurationMs record 107.5, platform lines 97.5" in found.disagreements[0].describe()


def test_agreeing_sources_are_no_disagreement(logs: Any) -> None:
    """The Telemetry API's duration and the REPORT's, to the 0.01 ms the text line has."""
    told = {"initDurationMs": 97.504, "initStatus": "success", "initPhase": "init"}
    scan = _scan(logs, _output(E1, 97.504, record=told))
    assert join(scan.records, scan.log_streams, scan.platform).disagreements == ()


def test_missing_platform_lines_leave_the_record_as_it_is(logs: Any) -> None:
    """JSON at WARN: no platform line, nothing filled, and the record still counts."""
    scan = _scan(logs, _output(E1, 97.5), log_format=LOG_FORMAT_JSON, level="WARN")
    assert not scan.platform.found
    found = join(scan.records, scan.log_streams, scan.platform)
    assert "initDurationMs" not in found.records[0]
    assert (found.joined, found.filled, found.lines_without_record) == (0, 0, 0)


def test_a_stream_with_lines_but_no_record_is_counted(logs: Any) -> None:
    """An environment whose record is not there (alive at the window's end, or lost)."""
    without = "\n".join(_output(E2, 50.0).splitlines()[:-1])
    scan = _scan(logs, _output(E1, 97.5), without)
    found = join(scan.records, scan.log_streams, scan.platform)
    assert (found.streams_with_lines, found.joined, found.lines_without_record) == (2, 1, 1)


def test_the_combined_pattern_costs_the_same_calls_here(logs: Any) -> None:
    """One scan reads records and lines; the bytes returned are counted for the bill."""
    scan = _scan(logs, _output(E1, 97.5))
    assert scan.pages == 1
    assert scan.bytes_returned >= scan.record_bytes + scan.platform.line_bytes > scan.record_bytes


def _lmi_output(environment: str, invocations: int) -> str:
    """A Managed Instances environment's RIE output: no init line, START/REPORT per invocation,
    and a record of the bash engine there (SHUTDOWN only: no count)."""
    lines = []
    for call in range(invocations):
        request = f"0a1b2c3d-0000-4000-8000-{call:012d}"
        lines += [
            f"START RequestId: {request}\tVersion: $LATEST",
            f"END RequestId: {request}",
            f"REPORT RequestId: {request}\tDuration: 51.53 ms",
        ]
    return "\n".join([*lines, *_output(environment, 1.0).splitlines()[-1:]])


@pytest.mark.parametrize(("level", "counted"), [("INFO", True), ("WARN", False)])
def test_records_without_a_count_get_their_streams_reports_by_a_second_scan(
    logs: Any, level: str, counted: bool
) -> None:
    """The bash engine on Managed Instances: a second scan of those streams counts the
    platform.report events (7 and 2); at WARN there is none, so the count stays unknown."""
    scan = _scan(
        logs, _lmi_output(E1, 7), _lmi_output(E2, 2), log_format=LOG_FORMAT_JSON, level=level
    )
    assert not any("invocations" in r for r in scan.records)
    counted_scan = with_report_counts(logs, scan)
    assert counted_scan.platform.report_calls == 1  # both streams in one call
    found = join(counted_scan.records, counted_scan.log_streams, counted_scan.platform)
    by_id = {r["environmentId"]: r for r in found.records}
    if counted:
        assert (by_id[E1]["invocations"], by_id[E2]["invocations"]) == (7, 2)
        assert by_id[E1][FILLED_FROM] == ["invocations"]
    else:
        assert "invocations" not in by_id[E1]
        assert "invocations" not in by_id[E2]


def test_records_that_counted_cause_no_second_scan(logs: Any) -> None:
    """Every record has its invocations: no extra call."""
    scan = _scan(logs, _output(E1, 97.5, record={"invocations": 1}))
    assert with_report_counts(logs, scan).platform.report_calls == 0
