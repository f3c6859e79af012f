"""The report's pure parts: the window, the query plan, the computation from series, paging."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from concurrency_observer.aws.metrics import (
    MAX_QUERIES_PER_CALL,
    MetricQuery,
    dimension_values,
    get_metric_series,
    list_function_metrics,
)
from concurrency_observer.aws.report import (
    MAXIMUM,
    SAMPLE_COUNT,
    SUM,
    FetchedMetrics,
    ReportRequest,
    ReportWindow,
    SeriesKey,
    build_report,
    plan_queries,
    resolve_window,
)
from concurrency_observer.errors import UserError
from concurrency_observer.figures.metric_series import Series
from concurrency_observer.schema import (
    ENVIRONMENT_INIT,
    ENVIRONMENT_LIFETIME,
    ENVIRONMENT_SHUTDOWN,
    FUNCTION_NAME,
    FUNCTION_VERSION,
    INIT_TYPE,
    SHUTDOWN_REASON,
    SHUTDOWN_REASON_SET,
)

UTC = timezone.utc
NOW = datetime(2026, 11, 27, 12, 34, 56, tzinfo=UTC)


def _at(minute: int) -> datetime:
    """A minute boundary relative to 12:00 UTC on NOW's day."""
    return datetime(2026, 11, 27, 12, 0, tzinfo=UTC) + timedelta(minutes=minute)


def _series(*points: tuple[int, float]) -> Series:
    return Series(tuple((_at(minute), value) for minute, value in points))


# Window 12:00-12:10, look-back from 11:55.
WINDOW = ReportWindow(start=_at(0), end=_at(10), period=60, lookback_start=_at(-5))


def test_window_is_aligned_to_the_period() -> None:
    """Start rounds down, end rounds up, the look-back start rounds down."""
    window = resolve_window(
        now=NOW, since=timedelta(minutes=30), period=300, lookback=timedelta(minutes=7)
    )
    assert window.start == datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert window.end == datetime(2026, 11, 27, 12, 35, tzinfo=UTC)
    assert window.lookback_start == datetime(2026, 11, 27, 11, 50, tzinfo=UTC)


def test_window_since_counts_back_from_end() -> None:
    """--since with --end is the stretch before --end, not before now."""
    window = resolve_window(now=NOW, since=timedelta(hours=1), end=_at(-60))
    assert (window.start, window.end) == (_at(-120), _at(-60))


def test_window_from_start_and_end_treats_naive_as_utc() -> None:
    """A naive --start is UTC; --end defaults to now."""
    window = resolve_window(now=NOW, start=datetime(2026, 11, 27, 10, 0, 30))
    assert window.start == datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert window.end == datetime(2026, 11, 27, 12, 35, tzinfo=UTC)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"since": timedelta(hours=1), "period": 90}, "multiple of 60"),
        ({"since": timedelta(hours=1), "period": 0}, "multiple of 60"),
        ({"since": timedelta(hours=1), "period": 7}, "multiple of 60"),
        ({"since": timedelta(hours=4), "period": 5}, "5-second data for 3 hours"),
        ({"start": NOW, "end": NOW - timedelta(hours=1)}, "window is empty"),
        ({"since": timedelta(days=20)}, "keeps 60-second data for 15 days"),
        ({"since": timedelta(days=30), "period": 300}, None),
        ({"since": timedelta(days=70), "period": 300}, "keeps 300-second data for 63 days"),
        ({}, "positive --since"),
    ],
)
def test_window_rejects_bad_input(arguments: dict[str, Any], message: str | None) -> None:
    """Bad periods, empty windows and windows too old for the period are one-line errors."""
    if message is None:
        assert resolve_window(now=NOW, **arguments).period == 300
        return
    with pytest.raises(UserError, match=message):
        resolve_window(now=NOW, **arguments)


def test_query_plan_ids_and_dimensions() -> None:
    """Ids are unique and valid; totals use the version's set, breakdowns the function's."""
    request = ReportRequest("fn", WINDOW, version="7")
    planned = plan_queries(request, ["on-demand", "provisioned-concurrency"], ["spindown"])
    ids = [query.id for query in planned.values()]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-z][A-Za-z0-9_]*", query_id) for query_id in ids)
    totals = planned[SeriesKey(ENVIRONMENT_INIT, SUM)]
    assert totals.dimensions == ((FUNCTION_NAME, "fn"), (FUNCTION_VERSION, "7"))
    by_type = planned[SeriesKey(ENVIRONMENT_SHUTDOWN, SUM, INIT_TYPE, "on-demand")]
    assert by_type.dimensions == ((FUNCTION_NAME, "fn"), (INIT_TYPE, "on-demand"))
    by_reason = planned[SeriesKey(ENVIRONMENT_SHUTDOWN, SUM, SHUTDOWN_REASON, "spindown")]
    assert tuple(name for name, _ in by_reason.dimensions) == SHUTDOWN_REASON_SET
    assert all(query.period == 60 for query in planned.values())


def _fetched(series: dict[SeriesKey, Series], types: tuple[str, ...] = ()) -> FetchedMetrics:
    return FetchedMetrics(init_types=types, shutdown_reasons=(), series=series, metrics_known=1)


def test_live_series_counts_from_the_lookback() -> None:
    """Inits before the start are live at the start; empty periods carry the count forward."""
    series = {
        SeriesKey(ENVIRONMENT_INIT, SUM): _series((-3, 2), (1, 3), (4, 1)),
        SeriesKey(ENVIRONMENT_SHUTDOWN, SUM): _series((2, 1), (4, 1), (8, 2)),
        SeriesKey(ENVIRONMENT_INIT, SUM, INIT_TYPE, "on-demand"): _series((-3, 2), (1, 3), (4, 1)),
        SeriesKey(ENVIRONMENT_SHUTDOWN, SUM, INIT_TYPE, "on-demand"): _series((2, 1), (8, 2)),
    }
    report = build_report(ReportRequest("fn", WINDOW), _fetched(series, ("on-demand",)))
    assert report.live_at_start == 2
    assert [p.total for p in report.live] == [2, 5, 4, 4, 4, 4, 4, 4, 2, 2]
    assert [p.by_init_type["on-demand"] for p in report.live] == [2, 5, 4, 4, 5, 5, 5, 5, 3, 3]
    assert (report.live_peak, report.live_peak_at, report.live_current) == (5, _at(1), 2)
    assert (report.inits_total, report.shutdowns_total) == (4, 4)  # the look-back isn't counted
    assert report.inits_by_type == {"on-demand": 4}
    assert report.warnings == ()
    assert report.has_data


def test_distributions_use_the_window_only() -> None:
    """Lifetime count, mean and max come from the window's shutdowns, not the look-back's."""
    series = {
        SeriesKey(ENVIRONMENT_LIFETIME, SUM): _series((-2, 1000.0), (3, 30.0), (6, 90.0)),
        SeriesKey(ENVIRONMENT_LIFETIME, SAMPLE_COUNT): _series((-2, 1), (3, 1), (6, 2)),
        SeriesKey(ENVIRONMENT_LIFETIME, MAXIMUM): _series((-2, 1000.0), (3, 30.0), (6, 50.0)),
    }
    report = build_report(ReportRequest("fn", WINDOW), _fetched(series))
    assert report.lifetime.count == 3
    assert report.lifetime.mean == pytest.approx(40.0)
    assert report.lifetime.maximum == 50.0
    assert report.time_to_first_invoke.mean is None
    assert report.time_to_first_invoke.to_dict() == {
        "count": 0,
        "mean": None,
        "max": None,
        "total": None,  # no environment gave it: unknown, not 0
    }


def test_short_lookback_warnings() -> None:
    """Shutdowns outrunning inits and lifetimes beyond the look-back are both flagged."""
    series = {
        SeriesKey(ENVIRONMENT_SHUTDOWN, SUM): _series((2, 1)),
        SeriesKey(ENVIRONMENT_LIFETIME, MAXIMUM): _series((2, 3600.0)),
    }
    report = build_report(ReportRequest("fn", WINDOW), _fetched(series))
    assert report.live_current == -1
    assert len(report.warnings) == 2
    assert "more shutdowns than inits by 2026-11-27T12:02:00Z" in report.warnings[0]
    assert "lived up to 1h00m" in report.warnings[1]


def test_breakdown_that_does_not_add_up_gets_a_note() -> None:
    """By-type counts short of the total (ListMetrics lag) are pointed out."""
    series = {
        SeriesKey(ENVIRONMENT_INIT, SUM): _series((1, 3)),
        SeriesKey(ENVIRONMENT_INIT, SUM, INIT_TYPE, "on-demand"): _series((1, 2)),
    }
    report = build_report(ReportRequest("fn", WINDOW), _fetched(series, ("on-demand",)))
    assert any("don't add up" in note for note in report.notes)


def test_version_report_is_not_split_by_type() -> None:
    """With a version the live series has no per-type split and the scope is all-versions."""
    series = {
        SeriesKey(ENVIRONMENT_INIT, SUM): _series((1, 1)),
        SeriesKey(ENVIRONMENT_INIT, SUM, INIT_TYPE, "on-demand"): _series((1, 5)),
    }
    report = build_report(
        ReportRequest("fn", WINDOW, version="3"), _fetched(series, ("on-demand",))
    )
    assert report.breakdown_scope == "all-versions"
    assert report.inits_by_type == {"on-demand": 5}
    assert report.inits_total == 1
    assert report.init_types == []
    assert "version 3 only" in report.notes[0]


def test_no_points_means_no_data() -> None:
    """A report over empty series says it has no data (the caller turns it into an error)."""
    report = build_report(ReportRequest("fn", WINDOW), _fetched({}))
    assert not report.has_data
    assert [p.total for p in report.live] == [0] * 10


@pytest.fixture
def stubbed() -> Any:
    """A real botocore CloudWatch client whose responses come from botocore's Stubber."""
    return boto3.client(
        "cloudwatch",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_get_metric_series_batches_and_follows_next_token(stubbed: Any) -> None:
    """501 queries take two batches; a NextToken page of the same id is joined to the first."""
    queries = [
        MetricQuery(f"q{i}", ENVIRONMENT_INIT, ((FUNCTION_NAME, "fn"),), SUM, 60)
        for i in range(MAX_QUERIES_PER_CALL + 1)
    ]
    stubber = Stubber(stubbed)

    def result(query_id: str, minute: int, value: float) -> dict[str, Any]:
        return {"Id": query_id, "Timestamps": [_at(minute)], "Values": [value]}

    first_batch = [q.to_api("NS") for q in queries[:MAX_QUERIES_PER_CALL]]
    stubber.add_response(
        "get_metric_data",
        {"MetricDataResults": [result("q0", 2, 1.0)], "NextToken": "page2"},
        {
            "MetricDataQueries": first_batch,
            "StartTime": _at(0),
            "EndTime": _at(10),
            "ScanBy": "TimestampAscending",
        },
    )
    stubber.add_response(
        "get_metric_data",
        {"MetricDataResults": [result("q0", 1, 2.0), result("q7", 3, 4.0)]},
        {
            "MetricDataQueries": first_batch,
            "StartTime": _at(0),
            "EndTime": _at(10),
            "ScanBy": "TimestampAscending",
            "NextToken": "page2",
        },
    )
    stubber.add_response(
        "get_metric_data",
        {"MetricDataResults": [result("q500", 5, 6.0)]},
        {
            "MetricDataQueries": [queries[-1].to_api("NS")],
            "StartTime": _at(0),
            "EndTime": _at(10),
            "ScanBy": "TimestampAscending",
        },
    )
    with stubber:
        series = get_metric_series(stubbed, "NS", queries, _at(0), _at(10))
    stubber.assert_no_pending_responses()
    assert series["q0"].points == ((_at(1), 2.0), (_at(2), 1.0))
    assert series["q7"].total == 4.0
    assert series["q500"].by_timestamp() == {_at(5): 6.0}
    assert series["q1"].points == ()
    assert len(series) == MAX_QUERIES_PER_CALL + 1


def test_list_function_metrics_pages_and_deduplicates(stubbed: Any) -> None:
    """Pages are followed, repeats dropped, and only exact dimension sets give breakdown values."""

    def metric(name: str, **dimensions: str) -> dict[str, Any]:
        return {
            "Namespace": "NS",
            "MetricName": name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
        }

    stubber = Stubber(stubbed)
    request = {"Namespace": "NS", "Dimensions": [{"Name": FUNCTION_NAME, "Value": "fn"}]}
    stubber.add_response(
        "list_metrics",
        {
            "Metrics": [
                metric(ENVIRONMENT_INIT, FunctionName="fn", InitType="on-demand"),
                metric(ENVIRONMENT_INIT, InitType="on-demand", FunctionName="fn"),
            ],
            "NextToken": "more",
        },
        request,
    )
    stubber.add_response(
        "list_metrics",
        {
            "Metrics": [
                metric(ENVIRONMENT_SHUTDOWN, FunctionName="fn", InitType="snap-start"),
                metric(ENVIRONMENT_SHUTDOWN, FunctionName="fn", ShutdownReason="spindown"),
                metric(ENVIRONMENT_INIT, FunctionName="fn", FunctionVersion="1"),
            ]
        },
        {**request, "NextToken": "more"},
    )
    with stubber:
        known = list_function_metrics(stubbed, "NS", "fn")
    assert len(known) == 4
    assert dimension_values(known, (FUNCTION_NAME, INIT_TYPE), INIT_TYPE) == [
        "on-demand",
        "snap-start",
    ]
    assert dimension_values(known, SHUTDOWN_REASON_SET, SHUTDOWN_REASON) == ["spindown"]
