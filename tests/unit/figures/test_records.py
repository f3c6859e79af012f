"""The report from environment records and the lean metric, worked out by hand.

Four environments (seconds after T0 = 12:00; window 12:00-12:10, period 60 s, look-back 10 min):

    A  on-demand    init -120  shutdown  30  spindown  3 invocations, first after 0.5 s (prompt)
    B  on-demand    init   10  shutdown  70  timeout   never invoked
    C  provisioned  init   20  shutdown  80  spindown  5 invocations, first after 15 s (delayed)
    D  provisioned  init   65  shutdown 1200 (after the window: in the scan, alive throughout)
    E  on-demand    init  100  no record yet (still alive): only the metric knows it

The lean metric (EnvironmentDelta, +1/-1, per init type and period):
    on-demand    11:58 +1 (A)        12:00 +1 -1 (B, A)        12:01 -1 +1 (B, E)
    provisioned  12:00 +1 (C)        12:01 +1 -1 (D, C)
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from concurrency_observer import environment_record as rec
from concurrency_observer.aws.report import (
    SAMPLE_COUNT,
    SUM,
    FetchedMetrics,
    ReportRequest,
    ReportWindow,
    SeriesKey,
    build_report,
)
from concurrency_observer.figures import records as record_figures
from concurrency_observer.figures.metric_series import Series
from concurrency_observer.figures.record_scan import RecordScan
from concurrency_observer.schema import (
    ENVIRONMENT_DELTA,
    INIT_ON_DEMAND,
    INIT_PROVISIONED,
    INIT_TYPE,
)

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
WINDOW = ReportWindow(
    start=T0, end=T0 + timedelta(minutes=10), period=60, lookback_start=T0 - timedelta(minutes=10)
)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _record(
    name: str,
    init_type: str,
    init: float,
    shutdown: float,
    reason: str = "spindown",
    **extra: Any,
) -> dict[str, Any]:
    return {
        rec.MARKER_KEY: rec.VERSION,
        rec.FUNCTION_NAME: "fn",
        rec.FUNCTION_VERSION: "1",
        rec.INIT_TYPE: init_type,
        rec.ENVIRONMENT_ID: name * 16,
        rec.ENGINE: rec.ENGINE_PYTHON,
        rec.METRICS_PROFILE: rec.PROFILE_LEAN,
        rec.INIT_TIME: int(_at(init).timestamp() * 1000),
        rec.SHUTDOWN_TIME: int(_at(shutdown).timestamp() * 1000),
        rec.SHUTDOWN_REASON: reason,
        rec.LIFETIME_MS: (shutdown - init) * 1000,
        rec.IDLE_MS: extra.pop("idle", 0) * 1000,
        **extra,
    }


RECORDS = [
    _record("a", INIT_ON_DEMAND, -120, 30, invocations=3, timeToFirstInvokeMs=500,
            firstInvoke="prompt", idle=20),
    _record("b", INIT_ON_DEMAND, 10, 70, "timeout", invocations=0, firstInvoke="never", idle=60),
    _record("c", INIT_PROVISIONED, 20, 80, invocations=5, timeToFirstInvokeMs=15_000,
            firstInvoke="delayed", idle=5),
    _record("d", INIT_PROVISIONED, 65, 1200),
]  # fmt: skip
LIVES = record_figures.lives(RECORDS)


def _delta(init_type: str, *periods: tuple[int, float, float]) -> dict[SeriesKey, Series]:
    """EnvironmentDelta's Sum and SampleCount at (minute, sum, samples) for one init type."""
    return {
        SeriesKey(ENVIRONMENT_DELTA, SUM, INIT_TYPE, init_type): Series(
            tuple((T0 + timedelta(minutes=m), s) for m, s, _ in periods)
        ),
        SeriesKey(ENVIRONMENT_DELTA, SAMPLE_COUNT, INIT_TYPE, init_type): Series(
            tuple((T0 + timedelta(minutes=m), n) for m, _, n in periods)
        ),
    }


LEAN = FetchedMetrics(
    init_types=(INIT_ON_DEMAND, INIT_PROVISIONED),
    shutdown_reasons=(),
    series={
        **_delta(INIT_ON_DEMAND, (-2, 1, 1), (0, 0, 2), (1, 0, 2)),
        **_delta(INIT_PROVISIONED, (0, 1, 1), (1, 0, 2)),
    },
    metrics_known=2,
)


def test_figures_of_the_environments_that_shut_down_in_the_window() -> None:
    """A, B and C shut down in the window (D after it): reasons, classes, distributions."""
    figures = record_figures.RecordFigures.of(LIVES, WINDOW.start, WINDOW.end)
    assert [life.environment_id[0] for life in figures.lives] == ["a", "b", "c"]
    assert figures.shutdowns_by_reason == {"spindown": 2, "timeout": 1}
    assert figures.classes_by_type == {
        INIT_ON_DEMAND: {"prompt": 1, "never": 1},
        INIT_PROVISIONED: {"delayed": 1},
    }
    assert figures.invocations_by_type == {INIT_ON_DEMAND: 3, INIT_PROVISIONED: 5}
    assert (figures.lifetime.count, figures.lifetime.total, figures.lifetime.maximum) == (
        3,
        270.0,
        150.0,
    )
    assert figures.time_to_first_invoke.count == 2  # the never-invoked one has none
    assert figures.time_to_first_invoke.total == 15.5
    assert figures.idle_time.total == 85.0


def test_lifetime_quantiles_are_exact_nearest_rank() -> None:
    """Lifetimes 60, 60, 150: p50 is the 2nd (60), p90 and p99 the 3rd (150)."""
    figures = record_figures.RecordFigures.of(LIVES, WINDOW.start, WINDOW.end)
    assert figures.quantiles is not None
    assert figures.quantiles.source == "records"
    assert (figures.quantiles.values[50], figures.quantiles.values[90]) == (60.0, 150.0)
    flat = [value for point in figures.survival for value in point]
    assert flat == pytest.approx([0.0, 1.0, 60.0, 2 / 3, 60.0, 1 / 3, 150.0, 0.0])


def test_alive_and_peak_from_the_instants() -> None:
    """At +25 s A, B, C are alive; the peak, 3, is first reached at +20 s (C's init)."""
    assert record_figures.alive_at(LIVES, [_at(25), _at(75), _at(90)]) == [3, 2, 1]
    assert record_figures.peak(LIVES, WINDOW.start, WINDOW.end) == (3, _at(20))
    assert record_figures.peaks_per_period(LIVES, [_at(0), _at(60), _at(120)], 60) == [3, 3, 1]


def test_the_report_from_records_and_the_lean_metric() -> None:
    """Inits from (SampleCount + Sum) / 2, shutdowns from (SampleCount - Sum) / 2; E, without
    a record, joins the live series at the end of its period."""
    report = build_report(
        ReportRequest("fn", WINDOW, provisioned=1),
        LEAN,
        RecordScan("/aws/lambda/fn", tuple(RECORDS)),
    )
    assert report.figures_source == "records"
    assert report.metric_profiles == ("lean",)
    assert report.inits_total == 4  # B, E on-demand; C, D provisioned (A before the window)
    assert report.inits_by_type == {INIT_ON_DEMAND: 2, INIT_PROVISIONED: 2}
    assert report.shutdowns_total == 3
    assert report.shutdowns_by_reason == {"spindown": 2, "timeout": 1}
    assert report.live_at_start == 1  # A
    series = [(p.total, p.peak, dict(p.by_init_type)) for p in report.live[:3]]
    assert series == [
        (2, 3, {INIT_ON_DEMAND: 1, INIT_PROVISIONED: 1}),  # 12:01: B, C alive
        (2, 3, {INIT_ON_DEMAND: 1, INIT_PROVISIONED: 1}),  # 12:02: D alive, E (metric only)
        (2, 2, {INIT_ON_DEMAND: 1, INIT_PROVISIONED: 1}),
    ]
    assert report.live_peak == 3
    usage = report.usage_by_init_type
    assert (usage[INIT_ON_DEMAND].created, usage[INIT_ON_DEMAND].shut_down) == (2, 2)
    assert (usage[INIT_ON_DEMAND].never, usage[INIT_ON_DEMAND].prompt) == (1, 1)
    assert report.reconciliation is not None
    assert report.reconciliation.environments_created == 2
    assert report.reconciliation.peak_live == 2  # C and D overlap from +65 s to +80 s
    assert report.observer_bill is not None
    assert (report.observer_bill.metric_streams, report.observer_bill.records) == (2, 3)


def test_without_records_the_lean_metric_still_gives_inits_shutdowns_and_live() -> None:
    """An empty scan: the metric path, and a note saying what is missing."""
    report = build_report(ReportRequest("fn", WINDOW), LEAN, RecordScan("/aws/lambda/fn"))
    assert report.figures_source == "metrics"
    assert (report.inits_total, report.shutdowns_total) == (4, 3)
    assert report.live[0].total == 2  # 11:58 A; 12:00 +B +C -A
    assert report.live[0].peak is None
    assert report.lifetime.count == 0
    assert any("no environment records" in note for note in report.notes)


def test_a_version_is_reported_from_its_records() -> None:
    """``--version``: the lean metric has no version, so that version's records give it all."""
    other = _record("z", INIT_ON_DEMAND, 5, 50) | {rec.FUNCTION_VERSION: "2"}
    scan = RecordScan("/aws/lambda/fn", (*RECORDS, other))
    report = build_report(ReportRequest("fn", WINDOW, version="2"), LEAN, scan)
    assert (report.inits_total, report.shutdowns_total) == (1, 1)
    assert report.lifetime.total == 45.0
    assert report.breakdown_scope == "function"
