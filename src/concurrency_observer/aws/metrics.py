"""Read metric series back from CloudWatch: GetMetricData (batched, paginated) and ListMetrics.

Public interface (boto3 CloudWatch client injected, so a client pointed at a moto server works too):

- ``MetricQuery``: one statistic of one metric with one exact dimension set, at one period.
- ``Series``: the data points CloudWatch returned for a query, oldest first.
- ``get_metric_series(cloudwatch, namespace, queries, start, end) -> dict[query id, Series]``:
  GetMetricData in batches of at most ``MAX_QUERIES_PER_CALL`` queries, every page of each
  (boto3's paginator).
- ``list_function_metrics(cloudwatch, namespace, function_name) -> list[MetricIdentity]``:
  every metric ListMetrics knows for the function, deduplicated.

Errors from AWS are left to the caller (wrap the calls in ``aws.session.aws_errors``).
Dimensions are sent in the order of ``schema.BASE_DIMENSION_SETS``: CloudWatch ignores the order,
but moto matches dimension lists order-sensitively, and the extension writes them in that order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final

from concurrency_observer.figures.metric_series import Series
from concurrency_observer.figures.periods import Dimensions
from concurrency_observer.schema import FUNCTION_NAME

MAX_QUERIES_PER_CALL: Final = 500  # GetMetricData's limit on MetricDataQueries per request


@dataclass(frozen=True)
class MetricQuery:
    """One statistic (``Sum``, ``SampleCount``, ``Maximum``) of a metric with exact dimensions."""

    id: str  # GetMetricData Id: starts with a lower-case letter, then [A-Za-z0-9_]
    metric_name: str
    dimensions: Dimensions
    stat: str
    period: int

    def to_api(self, namespace: str) -> dict[str, Any]:
        """The ``MetricDataQuery`` structure GetMetricData expects."""
        return {
            "Id": self.id,
            "MetricStat": {
                "Metric": {
                    "Namespace": namespace,
                    "MetricName": self.metric_name,
                    "Dimensions": [{"Name": n, "Value": v} for n, v in self.dimensions],
                },
                "Period": self.period,
                "Stat": self.stat,
            },
            "ReturnData": True,
        }


@dataclass(frozen=True)
class MetricIdentity:
    """A metric ListMetrics knows: its name and its dimensions as a name-to-value mapping."""

    metric_name: str
    dimensions: tuple[tuple[str, str], ...] = field(default=())

    @property
    def dimension_names(self) -> frozenset[str]:
        """The names of this metric's dimensions, without their values."""
        return frozenset(name for name, _ in self.dimensions)

    def value_of(self, dimension: str) -> str | None:
        """The value of ``dimension`` on this metric, if it has it."""
        return dict(self.dimensions).get(dimension)


def _utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (botocore returns tzutc(); naive means UTC here)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _batches(queries: Sequence[MetricQuery], size: int) -> Iterator[Sequence[MetricQuery]]:
    for first in range(0, len(queries), size):
        yield queries[first : first + size]


def get_metric_series(
    cloudwatch: Any,
    namespace: str,
    queries: Sequence[MetricQuery],
    start: datetime,
    end: datetime,
) -> dict[str, Series]:
    """Fetch every query over ``[start, end)``; each query id maps to its series (maybe empty).

    Query ids must be unique. Pages of one query (CloudWatch splits long results across
    ``NextToken`` pages) are joined and sorted by time.
    """
    ids = [query.id for query in queries]
    if len(set(ids)) != len(ids):
        raise ValueError("GetMetricData query ids must be unique")
    collected: dict[str, dict[datetime, float]] = {query.id: {} for query in queries}
    paginator = cloudwatch.get_paginator("get_metric_data")
    for batch in _batches(queries, MAX_QUERIES_PER_CALL):
        pages = paginator.paginate(
            MetricDataQueries=[query.to_api(namespace) for query in batch],
            StartTime=_utc(start),
            EndTime=_utc(end),
            ScanBy="TimestampAscending",
        )
        for page in pages:
            for result in page.get("MetricDataResults", []):
                points = collected.setdefault(result["Id"], {})
                for stamp, value in zip(
                    result.get("Timestamps", []), result.get("Values", []), strict=True
                ):
                    points[_utc(stamp)] = float(value)
    return {
        query_id: Series(tuple(sorted(points.items()))) for query_id, points in collected.items()
    }


def list_function_metrics(
    cloudwatch: Any, namespace: str, function_name: str
) -> list[MetricIdentity]:
    """Every metric in ``namespace`` with ``FunctionName=function_name``, deduplicated and sorted.

    ListMetrics only knows metrics that received data in the last two weeks, and a brand-new
    metric can take a few minutes to appear.
    """
    found: set[MetricIdentity] = set()
    pages = cloudwatch.get_paginator("list_metrics").paginate(
        Namespace=namespace, Dimensions=[{"Name": FUNCTION_NAME, "Value": function_name}]
    )
    for page in pages:
        for metric in page.get("Metrics", []):
            dimensions = tuple(
                sorted((d["Name"], d.get("Value", "")) for d in metric.get("Dimensions", []))
            )
            found.add(MetricIdentity(metric["MetricName"], dimensions))
    return sorted(found, key=lambda m: (m.metric_name, m.dimensions))


def dimension_values(
    metrics: Sequence[MetricIdentity], dimension_set: Sequence[str], dimension: str
) -> list[str]:
    """Sorted values of ``dimension`` on metrics whose dimensions are exactly ``dimension_set``."""
    wanted = frozenset(dimension_set)
    values = {
        value
        for metric in metrics
        if metric.dimension_names == wanted and (value := metric.value_of(dimension)) is not None
    }
    return sorted(values)
