"""Why the environments exist: classes, replacements, quantiles, survival, percentile fetching."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from concurrency_observer.aws.report import (
    MAXIMUM,
    SAMPLE_COUNT,
    SUM,
    FetchedMetrics,
    ReportRequest,
    ReportWindow,
    SeriesKey,
    build_report,
    fetch_lifetime_percentiles,
    plan_percentile_queries,
    plan_queries,
)
from concurrency_observer.figures.metric_series import Series
from concurrency_observer.figures.usage import (
    LIFETIME_PERCENTILES,
    QUANTILES_FROM_CLOUDWATCH,
    LifetimeQuantiles,
    Usage,
    nearest_rank,
    replacements,
    survival_curve,
    values_from_period_means,
)
from concurrency_observer.schema import (
    ENVIRONMENT_INIT,
    ENVIRONMENT_LIFETIME,
    ENVIRONMENT_SHUTDOWN,
    FIRST_INVOKE,
    FIRST_INVOKE_SET,
    INIT_ON_DEMAND,
    INIT_PROVISIONED,
    INIT_TYPE,
)

UTC = timezone.utc


def _at(minute: int) -> datetime:
    return datetime(2026, 11, 27, 12, 0, tzinfo=UTC) + timedelta(minutes=minute)


def _series(*points: tuple[int, float]) -> Series:
    return Series(tuple((_at(minute), value) for minute, value in points))


# Window 12:00-13:00, look-back from 11:55: one hour, so per-hour figures are plain counts.
WINDOW = ReportWindow(start=_at(0), end=_at(60), period=60, lookback_start=_at(-5))


def test_usage_shares_and_unclassified() -> None:
    """Shares are over classified shutdowns; unclassified is what SHUTDOWN-only left."""
    usage = Usage(created=10, shut_down=8, never=2, prompt=3, delayed=1)
    assert (usage.classified, usage.unclassified, usage.ever_invoked) == (6, 2, 4)
    assert usage.never_invoked_share == pytest.approx(2 / 6)
    assert usage.delayed_share == pytest.approx(1 / 6)
    assert Usage(3, 0).never_invoked_share is None


def test_replacements_worked_example() -> None:
    """PC of 3 built up, then recycled: inits at the plateau are replacements, growth is not."""
    # live:  1 3 3 2 3 3 4 4   (the dip to 2 and back is one recycle; 4 is new growth)
    # inits: 1 2 1 0 1 1 1 0   (a same-period swap at periods 2 and 5 keeps live flat)
    live = [1, 3, 3, 2, 3, 3, 4, 4]
    inits = [1.0, 2.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0]
    assert replacements(live, inits) == [0, 0, 1, 0, 1, 1, 0, 0]


def test_nearest_rank_and_period_means() -> None:
    """Nearest-rank percentiles; a period of n shutdowns contributes n copies of its mean."""
    values = values_from_period_means([(1, 10.0), (2, 50.0), (0, 0.0), (1, 100.0)])
    assert values == [10.0, 25.0, 25.0, 100.0]
    assert nearest_rank(values, 50) == 25.0
    assert nearest_rank(values, 99) == 100.0
    assert nearest_rank(values, 1) == 10.0
    assert nearest_rank([], 50) is None


def test_survival_curve_from_percentiles() -> None:
    """(0, 1), then (p-th percentile, 1 - p/100) in order, ending at (max, 0); never decreasing."""
    quantiles = LifetimeQuantiles(QUANTILES_FROM_CLOUDWATCH, {50: 600.0, 90: 550.0, 10: 60.0})
    assert survival_curve(quantiles, 7200.0) == [
        (0.0, 1.0),
        (60.0, 0.9),
        (600.0, 0.5),
        (600.0, pytest.approx(0.1)),  # CloudWatch's p90 below its p50 is lifted, not reordered
        (7200.0, 0.0),
    ]
    assert survival_curve(None, 10.0) == []


def test_plan_has_every_first_invoke_class_per_init_type() -> None:
    """Three class series per discovered init type, in the extension's dimension order."""
    planned = plan_queries(ReportRequest("fn", WINDOW), [INIT_ON_DEMAND, INIT_PROVISIONED], [])
    class_queries = [k for k in planned if k.first_invoke is not None]
    assert len(class_queries) == 6
    query = planned[SeriesKey(ENVIRONMENT_SHUTDOWN, SUM, INIT_TYPE, INIT_ON_DEMAND, "never")]
    assert tuple(name for name, _ in query.dimensions) == FIRST_INVOKE_SET
    assert dict(query.dimensions)[FIRST_INVOKE] == "never"


def test_percentile_queries_span_the_window() -> None:
    """One single-period query per percentile; none when the window is not whole minutes."""
    queries = plan_percentile_queries(ReportRequest("fn", WINDOW))
    assert queries is not None
    assert [q.stat for q in queries] == [f"p{p}" for p in LIFETIME_PERCENTILES]
    assert {q.period for q in queries} == {3600}
    odd = ReportWindow(_at(0), _at(0) + timedelta(seconds=90), 30, _at(-5))
    assert plan_percentile_queries(ReportRequest("fn", odd)) is None


@pytest.fixture
def stubbed() -> Any:
    """A real botocore CloudWatch client answered by botocore's Stubber."""
    return boto3.client(
        "cloudwatch",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_percentiles_from_cloudwatch(stubbed: Any) -> None:
    """GetMetricData's real response shape: one value per percentile at the window start."""
    request = ReportRequest("fn", WINDOW, "NS")
    queries = plan_percentile_queries(request)
    assert queries is not None
    values = {p: float(p * 10) for p in LIFETIME_PERCENTILES}
    stubber = Stubber(stubbed)
    stubber.add_response(
        "get_metric_data",
        {
            "MetricDataResults": [
                {
                    "Id": f"p{p}",
                    "Label": ENVIRONMENT_LIFETIME,
                    "Timestamps": [WINDOW.start] if p != 1 else [],
                    "Values": [values[p]] if p != 1 else [],
                    "StatusCode": "Complete",
                }
                for p in LIFETIME_PERCENTILES
            ],
            "Messages": [],
        },
        {
            "MetricDataQueries": [q.to_api("NS") for q in queries],
            "StartTime": WINDOW.start,
            "EndTime": WINDOW.end,
            "ScanBy": "TimestampAscending",
        },
    )
    with stubber:
        found, note = fetch_lifetime_percentiles(stubbed, request)
    assert note is None
    assert found == {p: v for p, v in values.items() if p != 1}


def test_percentiles_refused_fall_back_with_a_reason(stubbed: Any) -> None:
    """A CloudWatch that fails the percentile call: no percentiles, and the reason why."""
    stubber = Stubber(stubbed)
    stubber.add_client_error("get_metric_data", "InternalFailure", http_status_code=500)
    with stubber:
        found, note = fetch_lifetime_percentiles(stubbed, ReportRequest("fn", WINDOW, "NS"))
    assert found is None
    assert note is not None
    assert "no percentile statistics" in note


def test_report_uses_cloudwatch_percentiles_when_given() -> None:
    """With percentiles fetched, quantiles come from them and no approximation note is added."""
    series = {
        SeriesKey(ENVIRONMENT_INIT, SUM): _series((1, 2)),
        SeriesKey(ENVIRONMENT_SHUTDOWN, SUM): _series((30, 2)),
        SeriesKey(ENVIRONMENT_LIFETIME, SUM): _series((30, 3000.0)),
        SeriesKey(ENVIRONMENT_LIFETIME, SAMPLE_COUNT): _series((30, 2)),
        SeriesKey(ENVIRONMENT_LIFETIME, MAXIMUM): _series((30, 1800.0)),
    }
    fetched = FetchedMetrics((), (), series, 1, lifetime_percentiles={50: 1200.0, 90: 1750.0})
    report = build_report(ReportRequest("fn", WINDOW), fetched)
    assert report.lifetime_quantiles is not None
    assert report.lifetime_quantiles.to_dict() == {
        "source": QUANTILES_FROM_CLOUDWATCH,
        "p50": 1200.0,
        "p90": 1750.0,
        "p99": None,
    }
    assert report.lifetime_survival[-1] == (1800.0, 0.0)
    assert not any("approximated" in note for note in report.notes)


def test_pc_reconciliation_from_series() -> None:
    """PC of 2 over an hour: 4 PC inits, peak 2, two of them replacements, 3 ever invoked."""
    pc = (INIT_TYPE, INIT_PROVISIONED)
    series = {
        SeriesKey(ENVIRONMENT_INIT, SUM): _series((-2, 2), (20, 1), (40, 1)),
        SeriesKey(ENVIRONMENT_SHUTDOWN, SUM): _series((20, 1), (41, 1)),
        SeriesKey(ENVIRONMENT_INIT, SUM, *pc): _series((-2, 2), (20, 1), (40, 1)),
        SeriesKey(ENVIRONMENT_SHUTDOWN, SUM, *pc): _series((20, 1), (41, 1)),
        SeriesKey(ENVIRONMENT_SHUTDOWN, SUM, *pc, "never"): _series((20, 1)),
        SeriesKey(ENVIRONMENT_SHUTDOWN, SUM, *pc, "delayed"): _series((41, 1)),
    }
    fetched = FetchedMetrics((INIT_PROVISIONED,), (), series, 1)
    request = ReportRequest("fn", WINDOW, provisioned=2, allocated=2, provisioned_source="x")
    report = build_report(request, fetched)
    assert report.reconciliation is not None
    assert report.reconciliation.to_dict() == {
        "source": "x",
        "requested": 2,
        "allocated": 2,
        "environments_created": 2,  # the two of the look-back are not in the window
        "peak_live": 3,  # the period-40 replacement overlapped its predecessor by a minute
        "peak_to_requested": 1.5,
        "shut_down": 2,
        "ever_invoked": 1,
        "never_invoked": 1,
        "unclassified": 0,
        "replaced": 1,
        "replaced_per_hour": 1.0,
    }
    assert report.usage.never_invoked_share == 0.5
    assert report.proactive_share is None  # no on-demand environment


def test_no_pc_no_reconciliation() -> None:
    """Without PC inits or --provisioned the reconciliation is null."""
    fetched = FetchedMetrics((), (), {SeriesKey(ENVIRONMENT_INIT, SUM): _series((1, 1))}, 1)
    report = build_report(ReportRequest("fn", WINDOW), fetched)
    assert report.reconciliation is None
    assert report.to_dict()["provisioned_concurrency"] is None
