"""The metrics environments sent, read back, and compared with what really happened.

Two sources, one shape (``MetricSummary``: a metric, one exact dimension set, its data points
summed up):

- ``read_cloudwatch(client, namespace, since)``: ListMetrics, then GetMetricData per series
  (the ``cloudwatch`` sink, against moto or AWS).
- ``read_emf(output)``: the Embedded Metric Format lines in an environment's output (the ``emf``
  sink), parsed by the EMF specification, not by the extension's code.

``GroundTruth(...).discrepancies(summaries, function_name)`` lists what does not match, by the
``[FunctionName]`` series; an empty list is the verdict "all recorded".
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from concurrency_observer import schema
from concurrency_observer.aws.metrics import MetricQuery, get_metric_series

_STATISTICS = ("SampleCount", "Sum", "Minimum", "Maximum")
_PERIOD_S = 60


@dataclass(frozen=True)
class MetricSummary:
    """Every data point of one metric with one exact dimension set, summed up."""

    name: str
    dimensions: tuple[tuple[str, str], ...]  # sorted by dimension name
    samples: int
    total: float
    minimum: float
    maximum: float
    unit: str = ""

    def dimension(self, name: str) -> str | None:
        """The value of dimension ``name``, if this series has it."""
        return dict(self.dimensions).get(name)


def find(summaries: Iterable[MetricSummary], name: str, **dimensions: str) -> MetricSummary | None:
    """The series of metric ``name`` whose dimension set is exactly ``dimensions``."""
    wanted = tuple(sorted(dimensions.items()))
    return next((s for s in summaries if s.name == name and s.dimensions == wanted), None)


def read_cloudwatch(
    client: Any, namespace: str, since: datetime, until: datetime | None = None
) -> list[MetricSummary]:
    """Every series in ``namespace`` with data between ``since`` and ``until`` (default: now).

    GetMetricData, not GetMetricStatistics: both on AWS and on moto it matches the exact dimension
    set, where moto's GetMetricStatistics also counts every series with more dimensions. (moto's
    GetMetricData ignores the namespace when dimensions are given: use a namespace or function
    name of your own per run.)
    """
    start = since - timedelta(seconds=_PERIOD_S)
    end = (until or datetime.now(timezone.utc)) + timedelta(seconds=_PERIOD_S)
    metrics = _list_metrics(client, namespace)
    queries = [
        MetricQuery(
            id=f"m{index}_{stat.lower()}",
            metric_name=str(metric["MetricName"]),
            # In the listed order: moto matches dimension lists order-sensitively.
            dimensions=tuple((d["Name"], d["Value"]) for d in metric["Dimensions"]),
            stat=stat,
            period=_PERIOD_S,
        )
        for index, metric in enumerate(metrics)
        for stat in _STATISTICS
    ]
    series = get_metric_series(client, namespace, queries, start, end)
    values = {query_id: [value for _, value in found.points] for query_id, found in series.items()}
    summaries = []
    for index, metric in enumerate(metrics):
        by_stat = {stat: values.get(f"m{index}_{stat.lower()}", []) for stat in _STATISTICS}
        if not by_stat["SampleCount"]:
            continue
        name = str(metric["MetricName"])
        summaries.append(
            MetricSummary(
                name=name,
                dimensions=tuple(sorted((d["Name"], d["Value"]) for d in metric["Dimensions"])),
                samples=round(sum(by_stat["SampleCount"])),
                total=sum(by_stat["Sum"]),
                minimum=min(by_stat["Minimum"], default=math.nan),
                maximum=max(by_stat["Maximum"], default=math.nan),
                unit=schema.METRIC_UNITS.get(name, ""),
            )
        )
    return sorted(summaries, key=lambda s: (s.name, s.dimensions))


def _list_metrics(client: Any, namespace: str) -> list[dict[str, Any]]:
    """Each metric of ``namespace`` once (moto lists a metric once per data point it holds)."""
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, Any]] = {}
    for page in client.get_paginator("list_metrics").paginate(Namespace=namespace):
        for metric in page.get("Metrics", []):
            # The dimensions keep their listed order: moto matches queries in the written order.
            key = (
                str(metric["MetricName"]),
                tuple((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])),
            )
            metrics.setdefault(key, metric)
    return list(metrics.values())


def emf_documents(output: str) -> list[dict[str, Any]]:
    """The JSON objects in ``output`` that carry an EMF ``_aws.CloudWatchMetrics`` directive."""
    documents = []
    for line in output.splitlines():
        start = line.find("{")
        if start < 0 or '"_aws"' not in line:
            continue
        try:
            document = json.loads(line[start:])
        except ValueError:
            continue
        aws = document.get("_aws") if isinstance(document, dict) else None
        if isinstance(aws, dict) and isinstance(aws.get("CloudWatchMetrics"), list):
            documents.append(document)
    return documents


def read_emf(output: str, namespace: str | None = None) -> list[MetricSummary]:
    """The series CloudWatch Logs would extract from the EMF lines in ``output``."""
    points: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[float, str]]] = {}
    for document in emf_documents(output):
        for directive in document["_aws"]["CloudWatchMetrics"]:
            if namespace is not None and directive.get("Namespace") != namespace:
                continue
            for metric in directive.get("Metrics", []):
                values = emf_values(document.get(metric.get("Name")))
                for dimension_set in directive.get("Dimensions", []):
                    key = (
                        str(metric["Name"]),
                        tuple(sorted((d, str(document.get(d, ""))) for d in dimension_set)),
                    )
                    unit = str(metric.get("Unit", ""))
                    points.setdefault(key, []).extend((v, unit) for v in values)
    return sorted(
        (
            MetricSummary(
                name=name,
                dimensions=dimensions,
                samples=len(values),
                total=sum(v for v, _ in values),
                minimum=min(v for v, _ in values),
                maximum=max(v for v, _ in values),
                unit=values[0][1],
            )
            for (name, dimensions), values in points.items()
            if values
        ),
        key=lambda s: (s.name, s.dimensions),
    )


def emf_values(raw: object) -> list[float]:
    """A metric member's values: a number or a list of numbers (EMF allows both)."""
    items = raw if isinstance(raw, list) else [raw]
    return [
        float(v)
        for v in items
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ]


@dataclass(frozen=True)
class GroundTruth:
    """What the harness knows happened to one function's environments."""

    inits: int
    shutdowns: int
    invocations: int

    def discrepancies(self, summaries: Iterable[MetricSummary], function_name: str) -> list[str]:
        """One line per recorded figure that differs from the truth (by ``[FunctionName]``)."""
        series = list(summaries)
        expected: Mapping[str, int] = {
            schema.ENVIRONMENT_INIT: self.inits,
            schema.ENVIRONMENT_SHUTDOWN: self.shutdowns,
            schema.ENVIRONMENT_INVOCATIONS: self.invocations,
        }
        problems = []
        for metric, truth in expected.items():
            found = find(series, metric, FunctionName=function_name)
            recorded = 0.0 if found is None else found.total
            if recorded != truth:
                problems.append(f"{metric}: recorded {recorded:g}, truth {truth}")
        return problems
