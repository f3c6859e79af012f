"""Unknown is not zero, and the platform's lines in the report: records and lines by hand.

Window 12:00-12:10, three bash-engine records that counted nothing (no class, no invocations)
and one Python record; the platform's lines of their streams give init durations.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from rich.console import Console

from concurrency_observer.aws.report import ReportRequest, build_report
from concurrency_observer.figures.platform_lines import accounts
from concurrency_observer.figures.record_scan import RecordScan
from concurrency_observer.reporting.structured import report_csv
from concurrency_observer.reporting.table import report_renderable
from tests.unit.aws.test_report_platform import NO_METRICS, WINDOW, _record

BASH = [_record(name, "on-demand", engine="bash") for name in "abc"]
TOLD = _record(
    "d",
    "on-demand",
    firstInvoke="prompt",
    invocations=4,
    initDurationMs=120.0,
    initStatus="success",
)
STREAMS = {r["environmentId"]: f"2026/11/27/[$LATEST]{r['environmentId']}" for r in [*BASH, TOLD]}
LINES = [
    ("a", "REPORT RequestId: 1\tDuration: 2.00 ms\tBilled Duration: 2 ms\tInit Duration: 97.50 ms"),
    ("b", "INIT_START Runtime Version: nodejs:22.v41\tRuntime Version ARN: arn:x"),
    (
        "d",
        "REPORT RequestId: 2\tDuration: 2.00 ms\tBilled Duration: 2 ms\tInit Duration: 131.25 ms",
    ),
    ("z", "INIT_START Runtime Version: nodejs:22.v41"),  # a stream without a record
]


def _scan(records: list[dict[str, Any]], lines: list[tuple[str, str]]) -> RecordScan:
    events = [{"logStreamName": f"2026/11/27/[$LATEST]{n * 16}", "message": m} for n, m in lines]
    return RecordScan(
        "/aws/lambda/fn",
        tuple(records),
        log_streams=STREAMS,
        platform=accounts(events),
        platform_scanned=True,
    )


def _document(records: list[dict[str, Any]], lines: list[tuple[str, str]]) -> dict[str, Any]:
    report = build_report(ReportRequest("fn", WINDOW), NO_METRICS, _scan(records, lines), 40.0)
    return report.to_dict()


def test_nothing_counted_is_null_in_json_and_empty_in_csv_and_unknown_in_the_table() -> None:
    """Only bash records without counts: felt, share and the invocation total are unknown."""
    scan = _scan(BASH, [])
    report = build_report(ReportRequest("fn", WINDOW), NO_METRICS, scan, 40.0)
    document = report.to_dict()
    cold = document["cold_starts"]
    assert (cold["felt"], cold["share"], cold["classified"], cold["environments"]) == (
        None,
        None,
        0,
        3,
    )
    assert document["invocations_per_environment"]["total"] is None
    rows = {(r[0], r[1]): r[3] for r in csv.reader(io.StringIO(report_csv(report)))}
    assert rows[("cold_starts", "felt")] == ""
    assert rows[("cold_starts", "share")] == ""
    console = Console(width=200, record=True)
    console.print(report_renderable(report))
    text = console.export_text()
    assert "0.00%" not in text
    assert "invocations in total: unknown" in text
    felt_row = next(line for line in text.splitlines() if "cold starts felt" in line)
    assert "unknown" in felt_row
    reasons = [n for n in document["notes"] if "class unknown" in n]
    assert len(reasons) == 1  # the reason, once
    assert "engines here: bash" in reasons[0]


def test_the_share_says_over_how_many() -> None:
    """One classified of four: felt 1 over its own 4 invocations, not AWS/Lambda's 40."""
    cold = _document([*BASH, TOLD], [])["cold_starts"]
    assert (cold["felt"], cold["classified"], cold["environments"]) == (1, 1, 4)
    assert (cold["share"], cold["share_invocations"]) == (0.25, 4.0)
    assert cold["invocations"] == 40.0


def test_lines_fill_the_records_and_a_disagreement_is_noted() -> None:
    """a gets 97.5 ms from its REPORT; d's 120 ms against its REPORT's 131.25: shown, kept."""
    document = _document([*BASH, TOLD], LINES)
    platform = document["platform"]
    lines = platform["platform_lines"]
    assert (lines["streams"], lines["records_joined"], lines["records_filled"]) == (4, 3, 3)
    assert lines["streams_without_record"] == 1
    assert lines["disagreements"] == [
        {
            "environment_id": "d" * 16,
            "log_stream": STREAMS["d" * 16],
            "field": "initDurationMs",
            "record": 120.0,
            "platform_lines": 131.25,
        }
    ]
    durations = platform["init_duration_ms_by_init_type"]["on-demand"]
    assert (durations["count"], durations["max"]) == (2, 120.0)  # 97.5 and d's own 120
    assert platform["runtime_versions"] == {"nodejs:22.v41": 1}
    assert platform["with_telemetry"] == 1  # d; a was completed from the lines
    notes = [n for n in document["notes"] if "disagree" in n]
    assert len(notes) == 1
    assert "initDurationMs record 120.0, platform lines 131.25" in notes[0]
    assert json.dumps(document)  # serializable as it is


def test_no_platform_line_says_why_the_init_figures_are_missing() -> None:
    """A scan that asked for the lines and found none (JSON at WARN): said once."""
    notes = _document(BASH, [])["notes"]
    assert sum("no platform lines" in n for n in notes) == 1
