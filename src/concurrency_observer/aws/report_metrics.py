"""The report's metric side: which GetMetricData queries it needs, and fetching them.

``fetch_metrics(cloudwatch, request)``: ListMetrics to discover the InitType and ShutdownReason
values, then GetMetricData for every series the report needs, under both metric profiles: the
lean ``EnvironmentDelta`` (Sum and SampleCount per init type) and the full profile's six metrics.
``local.emf_report`` answers the same planned queries from EMF lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from concurrency_observer.aws.metrics import (
    MetricQuery,
    dimension_values,
    get_metric_series,
    list_function_metrics,
)
from concurrency_observer.aws.session import aws_errors
from concurrency_observer.errors import AwsError
from concurrency_observer.figures.metric_series import (
    DISTRIBUTION_METRICS,
    MAXIMUM,
    SAMPLE_COUNT,
    SUM,
    FetchedMetrics,
    SeriesKey,
)
from concurrency_observer.figures.periods import Dimensions
from concurrency_observer.figures.report_window import ReportRequest
from concurrency_observer.figures.usage import LIFETIME_PERCENTILES
from concurrency_observer.schema import (
    ENVIRONMENT_DELTA,
    ENVIRONMENT_INIT,
    ENVIRONMENT_LIFETIME,
    ENVIRONMENT_SHUTDOWN,
    FIRST_INVOKE,
    FIRST_INVOKE_CLASSES,
    FUNCTION_NAME,
    INIT_TYPE,
    SHUTDOWN_REASON,
    SHUTDOWN_REASON_SET,
)


def plan_queries(
    request: ReportRequest, init_types: Sequence[str], shutdown_reasons: Sequence[str]
) -> dict[SeriesKey, MetricQuery]:
    """Every GetMetricData query the report needs, keyed by what it means."""
    period = request.window.period
    function = ((FUNCTION_NAME, request.function_name),)
    planned: dict[SeriesKey, MetricQuery] = {}

    def add(key: SeriesKey, dimensions: Dimensions) -> None:
        query_id = f"q{len(planned)}"
        planned[key] = MetricQuery(query_id, key.metric, dimensions, key.stat, period)

    totals = request.totals_dimensions
    add(SeriesKey(ENVIRONMENT_INIT, SUM), totals)
    add(SeriesKey(ENVIRONMENT_SHUTDOWN, SUM), totals)
    for metric in DISTRIBUTION_METRICS:
        for stat in (SUM, SAMPLE_COUNT, MAXIMUM):
            add(SeriesKey(metric, stat), totals)
    for init_type in init_types:
        by_type = (*function, (INIT_TYPE, init_type))
        add(SeriesKey(ENVIRONMENT_INIT, SUM, INIT_TYPE, init_type), by_type)
        add(SeriesKey(ENVIRONMENT_SHUTDOWN, SUM, INIT_TYPE, init_type), by_type)
        # The lean profile's one metric: inits and shutdowns from its Sum and SampleCount.
        add(SeriesKey(ENVIRONMENT_DELTA, SUM, INIT_TYPE, init_type), by_type)
        add(SeriesKey(ENVIRONMENT_DELTA, SAMPLE_COUNT, INIT_TYPE, init_type), by_type)
    for reason in shutdown_reasons:
        by_reason = (*function, (SHUTDOWN_REASON, reason))
        add(SeriesKey(ENVIRONMENT_SHUTDOWN, SUM, SHUTDOWN_REASON, reason), by_reason)
    # The FirstInvoke classes are a closed set: no discovery needed, an absent one reads as 0.
    for init_type in init_types:
        for first_invoke in FIRST_INVOKE_CLASSES:
            by_class = (*function, (INIT_TYPE, init_type), (FIRST_INVOKE, first_invoke))
            key = SeriesKey(ENVIRONMENT_SHUTDOWN, SUM, INIT_TYPE, init_type, first_invoke)
            add(key, by_class)
    return planned


def plan_percentile_queries(request: ReportRequest) -> list[MetricQuery] | None:
    """One query per lifetime percentile, each a single period spanning the whole window.

    None when the window is not a whole number of minutes (a period above 60 s must be a
    multiple of 60).
    """
    window = request.window
    seconds = int((window.end - window.start).total_seconds())
    if seconds % 60:
        return None
    return [
        MetricQuery(f"p{p}", ENVIRONMENT_LIFETIME, request.totals_dimensions, f"p{p}", seconds)
        for p in LIFETIME_PERCENTILES
    ]


def fetch_lifetime_percentiles(
    cloudwatch: Any, request: ReportRequest
) -> tuple[dict[int, float] | None, str | None]:
    """Lifetime percentiles over the window, or None and the reason they are not available.

    CloudWatch computes percentiles of the raw values the extension publishes. moto has no
    percentile statistics (its in-process backend raises TypeError, its server answers 500):
    the report then falls back, and says so, instead of failing.
    """
    queries = plan_percentile_queries(request)
    if queries is None:
        return None, "the window is not a whole number of minutes"
    window = request.window
    try:
        with aws_errors("cloudwatch:GetMetricData (percentiles)"):
            by_id = get_metric_series(
                cloudwatch, request.namespace, queries, window.start, window.end
            )
    except (AwsError, TypeError, ValueError, KeyError) as error:
        return None, f"this CloudWatch gave no percentile statistics ({type(error).__name__})"
    found = {
        percent: series.points[0][1]
        for percent, series in zip(
            LIFETIME_PERCENTILES, (by_id[q.id] for q in queries), strict=True
        )
        if series.points
    }
    if not found:
        return None, "CloudWatch returned no percentile values"
    return found, None


def fetch_metrics(
    cloudwatch: Any, request: ReportRequest, *, percentiles: bool = True
) -> FetchedMetrics:
    """Discover the breakdown values (ListMetrics), then read every series (GetMetricData).

    ``percentiles``: also ask CloudWatch for lifetime percentiles (not needed with records).
    """
    with aws_errors("cloudwatch:ListMetrics"):
        known = list_function_metrics(cloudwatch, request.namespace, request.function_name)
    init_types = dimension_values(known, (FUNCTION_NAME, INIT_TYPE), INIT_TYPE)
    reasons = dimension_values(known, SHUTDOWN_REASON_SET, SHUTDOWN_REASON)
    planned = plan_queries(request, init_types, reasons)
    window = request.window
    with aws_errors("cloudwatch:GetMetricData"):
        by_id = get_metric_series(
            cloudwatch, request.namespace, list(planned.values()), window.lookback_start, window.end
        )
    series = {key: by_id[query.id] for key, query in planned.items()}
    found, note = (None, None)
    # Only worth a call when some environment shut down (and reported a lifetime).
    if percentiles and series[SeriesKey(ENVIRONMENT_LIFETIME, SAMPLE_COUNT)].points:
        found, note = fetch_lifetime_percentiles(cloudwatch, request)
    return FetchedMetrics(
        tuple(init_types),
        tuple(reasons),
        series,
        metrics_known=len(known),
        lifetime_percentiles=found,
        percentile_note=note,
    )
