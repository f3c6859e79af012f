"""The report built from EMF lines instead of CloudWatch: what CloudWatch Logs would extract.

``fetch_from_emf(documents, request)`` answers the same queries ``aws.report.plan_queries`` plans
(the same metrics, statistics, exact dimension sets and periods, under either metric profile) from
EMF documents (``readback.emf_documents``), so ``figures.report_build.build_report`` turns them,
with the environment records, into the very report ``report`` prints for CloudWatch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from concurrency_observer.aws.report_metrics import plan_queries
from concurrency_observer.figures.metric_series import FetchedMetrics, Series
from concurrency_observer.figures.periods import floor_to_period
from concurrency_observer.figures.report_window import ReportRequest
from concurrency_observer.local.readback import emf_values
from concurrency_observer.schema import FUNCTION_NAME, INIT_TYPE, SHUTDOWN_REASON


@dataclass(frozen=True)
class EmfPoint:
    """One value of one metric under one exact dimension set, at the document's timestamp."""

    metric: str
    dimensions: frozenset[tuple[str, str]]
    timestamp: datetime
    value: float


def emf_points(documents: Iterable[Mapping[str, Any]], namespace: str) -> list[EmfPoint]:
    """Every (metric, dimension set) value in the documents' directives for ``namespace``."""
    points: list[EmfPoint] = []
    for document in documents:
        aws = document.get("_aws", {})
        stamp = aws.get("Timestamp")
        if not isinstance(stamp, int | float):
            continue
        moment = datetime.fromtimestamp(stamp / 1000, timezone.utc)
        for directive in aws.get("CloudWatchMetrics", []):
            if directive.get("Namespace") != namespace:
                continue
            for metric in directive.get("Metrics", []):
                name = str(metric.get("Name"))
                for dimension_set in directive.get("Dimensions", []):
                    dimensions = frozenset((d, str(document.get(d, ""))) for d in dimension_set)
                    points.extend(
                        EmfPoint(name, dimensions, moment, value)
                        for value in emf_values(document.get(name))
                    )
    return points


def _discovered(points: Iterable[EmfPoint], function_name: str, dimension: str) -> list[str]:
    """Values of ``dimension`` on the exact set ``[FunctionName, dimension]`` (as ListMetrics)."""
    found = set()
    for point in points:
        names = dict(point.dimensions)
        if set(names) == {FUNCTION_NAME, dimension} and names[FUNCTION_NAME] == function_name:
            found.add(names[dimension])
    return sorted(found)


def _aggregate(values: list[float], stat: str) -> float:
    if stat == "Sum":
        return sum(values)
    if stat == "SampleCount":
        return float(len(values))
    if stat == "Maximum":
        return max(values)
    raise ValueError(f"statistic {stat} is not computed from EMF lines")


def fetch_from_emf(
    documents: Iterable[Mapping[str, Any]], request: ReportRequest
) -> FetchedMetrics:
    """The series the report needs, computed from EMF documents as CloudWatch would store them."""
    points = emf_points(documents, request.namespace)
    init_types = _discovered(points, request.function_name, INIT_TYPE)
    reasons = _discovered(points, request.function_name, SHUTDOWN_REASON)
    window = request.window
    series = {}
    for key, query in plan_queries(request, init_types, reasons).items():
        wanted = frozenset(query.dimensions)
        buckets: dict[datetime, list[float]] = {}
        for point in points:
            if point.metric != query.metric_name or point.dimensions != wanted:
                continue
            if not window.lookback_start <= point.timestamp < window.end:
                continue
            period_start = floor_to_period(point.timestamp, query.period)
            buckets.setdefault(period_start, []).append(point.value)
        series[key] = Series(
            tuple(
                (start, _aggregate(values, query.stat)) for start, values in sorted(buckets.items())
            )
        )
    known = {
        (p.metric, p.dimensions)
        for p in points
        if dict(p.dimensions).get(FUNCTION_NAME) == request.function_name
    }
    return FetchedMetrics(tuple(init_types), tuple(reasons), series, metrics_known=len(known))
