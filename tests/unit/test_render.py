"""Renderers of a report built from hand-made series: table, JSON, CSV and the PNG chart."""

from __future__ import annotations

import csv
import io
import json
import struct
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from rich.console import Console

from concurrency_observer.aws.report import (
    MAXIMUM,
    SAMPLE_COUNT,
    SUM,
    FetchedMetrics,
    Report,
    ReportRequest,
    ReportWindow,
    SeriesKey,
    build_report,
)
from concurrency_observer.errors import UserError
from concurrency_observer.figures.metric_series import Series
from concurrency_observer.reporting import (
    CSV_HEADER,
    csv_rows,
    print_report,
    report_csv,
    report_json,
    write_chart,
)
from concurrency_observer.reporting.table import sparkline
from concurrency_observer.schema import (
    ENVIRONMENT_INIT,
    ENVIRONMENT_INVOCATIONS,
    ENVIRONMENT_SHUTDOWN,
    INIT_TYPE,
    SHUTDOWN_REASON,
)

START = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _at(minute: int) -> datetime:
    return START + timedelta(minutes=minute)


def _series(*points: tuple[int, float]) -> Series:
    return Series(tuple((_at(m), v) for m, v in points))


def _report(*, version: str | None = None, provisioned: int | None = 2) -> Report:
    window = ReportWindow(start=START, end=_at(6), period=60, lookback_start=_at(-2))
    series = {
        SeriesKey(ENVIRONMENT_INIT, SUM): _series((-1, 1), (1, 2), (2, 1)),
        SeriesKey(ENVIRONMENT_SHUTDOWN, SUM): _series((4, 2)),
        SeriesKey(ENVIRONMENT_INIT, SUM, INIT_TYPE, "on-demand"): _series((-1, 1), (2, 1)),
        SeriesKey(ENVIRONMENT_SHUTDOWN, SUM, INIT_TYPE, "on-demand"): _series((4, 1)),
        SeriesKey(ENVIRONMENT_INIT, SUM, INIT_TYPE, "provisioned-concurrency"): _series((1, 2)),
        SeriesKey(ENVIRONMENT_SHUTDOWN, SUM, INIT_TYPE, "provisioned-concurrency"): _series((4, 1)),
        SeriesKey(ENVIRONMENT_SHUTDOWN, SUM, SHUTDOWN_REASON, "spindown"): _series((4, 2)),
        SeriesKey(ENVIRONMENT_INVOCATIONS, SUM): _series((4, 9.0)),
        SeriesKey(ENVIRONMENT_INVOCATIONS, SAMPLE_COUNT): _series((4, 2)),
        SeriesKey(ENVIRONMENT_INVOCATIONS, MAXIMUM): _series((4, 6.0)),
    }
    fetched = FetchedMetrics(
        init_types=("on-demand", "provisioned-concurrency"),
        shutdown_reasons=("spindown",),
        series=series,
        metrics_known=1,
    )
    request = ReportRequest("fn", window, "NS", version=version, provisioned=provisioned)
    return build_report(request, fetched)


def test_json_is_the_report_document() -> None:
    """The JSON text parses back to ``Report.to_dict()`` with the documented top-level keys."""
    report = _report()
    document = json.loads(report_json(report))
    assert document == report.to_dict()
    assert list(document) == [
        "schema_version",
        "function",
        "version",
        "namespace",
        "window",
        "breakdown_scope",
        "inits",
        "shutdowns",
        "live",
        "lifetime_seconds",
        "idle_time_seconds",
        "time_to_first_invoke_seconds",
        "invocations_per_environment",
        "provisioned",
        "environments_by_init_type",
        "shares",
        "lifetime_quantiles",
        "lifetime_survival",
        "provisioned_concurrency",
        "cross_check",
        "figures_source",
        "metric_profiles",
        "observer_bill",
        "records_read",
        "cold_starts",
        "platform",
        "warnings",
        "notes",
    ]
    assert [p["total"] for p in document["live"]["series"]] == [1, 3, 4, 4, 2, 2]
    assert document["provisioned"] == {"requested": 2, "peak_ratio": 2.0}


def test_csv_rows_follow_the_json_paths() -> None:
    """Every CSV row is a JSON path and its value; null is empty; series rows carry times."""
    report = _report()
    text = report_csv(report)
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_HEADER
    assert [tuple(r) for r in rows[1:]] == csv_rows(report)
    cells = {(r[0], r[1], r[2]): r[3] for r in rows[1:]}
    assert cells[("version", "", "")] == ""
    assert cells[("inits", "by_init_type.provisioned-concurrency", "")] == "2"
    assert cells[("invocations_per_environment", "mean", "")] == "4.5"
    assert cells[("lifetime_seconds", "mean", "")] == ""
    assert cells[("live", "series.by_init_type.on-demand", "2026-11-27T12:02:00Z")] == "2"
    assert cells[("provisioned", "peak_ratio", "")] == "2.0"
    series_rows = [r for r in rows[1:] if r[1] == "series.total"]
    assert len(series_rows) == len(report.live)


def test_table_shows_figures_warnings_and_scope() -> None:
    """The table names the function, shows the ratio, and says when breakdowns mix versions."""
    console = Console(record=True, width=120)
    print_report(_report(version="4"), console)
    text = console.export_text()
    assert "fn version 4" in text
    assert "provisioned-concurrency" in text
    assert "all versions of the function" in text
    assert "note: inits by init type and shutdowns by reason cover all versions" in text
    assert "peak live / provisioned" in text


def test_sparkline_scales_and_buckets() -> None:
    """The lowest value is the lowest block, the highest the highest; long series are folded."""
    assert sparkline([0, 1, 7]) == "▁▂█"
    assert len(sparkline(list(range(200)), width=50)) == 50
    assert sparkline([]) == ""


@pytest.mark.parametrize(("version", "provisioned"), [(None, 3), ("2", None)])
def test_chart_is_a_png(tmp_path: Path, version: str | None, provisioned: int | None) -> None:
    """The chart is a PNG of the documented size, with or without the split and the line."""
    from matplotlib.image import imread

    path = write_chart(_report(version=version, provisioned=provisioned), tmp_path / "c.png")
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert struct.unpack(">II", data[16:24]) == (1000, 800)
    assert imread(path).shape == (800, 1000, 4)


def test_chart_to_a_missing_directory_is_a_user_error(tmp_path: Path) -> None:
    """An unwritable chart path is a one-line error, not a traceback."""
    with pytest.raises(UserError, match="cannot write the chart"):
        write_chart(_report(), tmp_path / "missing" / "c.png")


def test_table_shows_the_cross_check() -> None:
    """With --cross-check, the three counts appear side by side, labelled."""
    from dataclasses import replace

    found = {
        "log_group": "/aws/lambda/fn",
        "environment_init": 4,
        "init_start_lines": 5,
        "log_streams_created": None,
        "notes": ["the Logs Insights query did not complete in time; run it again"],
    }
    console = Console(record=True, width=120)
    print_report(replace(_report(), cross_check=found), console)
    text = console.export_text()
    assert "Cross-check against /aws/lambda/fn" in text
    assert "INIT_START lines (Logs Insights)" in text
    assert "log streams created in the window" in text
    assert "did not complete in time" in " ".join(text.split())


def test_a_report_from_records_shows_its_bill_and_charts_its_peaks(tmp_path: Path) -> None:
    """Records: the table names the exact peak and the observer's bill; the chart still draws."""
    from concurrency_observer.figures.record_scan import RecordScan
    from tests.unit.figures.test_records import LEAN, RECORDS, WINDOW

    report = build_report(
        ReportRequest("fn", WINDOW), LEAN, RecordScan("/aws/lambda/fn", tuple(RECORDS))
    )
    console = Console(record=True, width=140)
    print_report(report, console)
    text = console.export_text()
    assert "peak live (most at once, from the records)" in text
    assert "The observer's own bill" in text
    assert "custom metrics for the function (lean)" in text
    assert "$0.60" in text
    assert "lifetime quantiles (s): p50 60.0, p90 150.0, p99 150.0  [records]" in text
    path = write_chart(report, tmp_path / "records.png")
    assert path.read_bytes()[:8] == PNG_SIGNATURE
