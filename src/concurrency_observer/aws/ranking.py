"""``report --all``: every function in the namespace, ranked, in a few batched calls.

1. Discover: ListMetrics (paginated) for ``EnvironmentInit`` gives the functions observed under
   the full profile (the ``[FunctionName]`` set), for ``EnvironmentDelta`` those under the lean
   default with their init types, for ``EnvironmentShutdown`` filtered on the ``FirstInvoke``
   dimension the FirstInvoke series that exist (``[FunctionName, InitType, FirstInvoke]``).
   Three listings, whatever the number of functions.
2. Series pass: GetMetricData, ``EnvironmentInit`` and ``EnvironmentShutdown`` (Sum) per function
   and ``EnvironmentDelta`` (Sum, SampleCount) per function and init type, at the report's period
   from the look-back start: inits, shutdowns and the live peak (both profiles summed).
3. Totals pass: GetMetricData, one period spanning the window: each FirstInvoke series (Sum) and
   Lambda's own ``AWS/Lambda ConcurrentExecutions`` (Maximum) per function.
4. Records: for a function without FirstInvoke series (the lean default), its FirstInvoke
   classes come from its environment records (``aws.records``), when a Logs client is given.
   Each function's log group is found as ``report`` finds it (``LoggingConfig.LogGroup`` by
   GetFunctionConfiguration when a Lambda client is given, else ``/aws/lambda/<function>``);
   each distinct group is scanned once for the window and its records split by their own
   ``functionName``, so 100 functions sharing one group cost one scan, not 100.

Both passes go in batches of up to 500 queries per call (``aws.metrics.get_metric_series``).
The over-provisioning ratio is the peak of live environments over the peak of invocations in
flight: how many environments existed per request actually running at the busiest minute.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from concurrency_observer.aws.metrics import MetricQuery, get_metric_series
from concurrency_observer.aws.records import default_log_group, function_log_group, read_records
from concurrency_observer.aws.report import NoMetricsError, ReportWindow, iso
from concurrency_observer.aws.session import aws_errors
from concurrency_observer.figures import records as record_figures
from concurrency_observer.figures.metric_series import Series
from concurrency_observer.figures.record_scan import RecordScan
from concurrency_observer.figures.report_notes import refused_note
from concurrency_observer.figures.usage import Usage, combined, usage_from_classes
from concurrency_observer.schema import (
    ENVIRONMENT_DELTA,
    ENVIRONMENT_INIT,
    ENVIRONMENT_SHUTDOWN,
    FIRST_INVOKE,
    FIRST_INVOKE_SET,
    FUNCTION_NAME,
    INIT_ON_DEMAND,
    INIT_TYPE,
)

LAMBDA_NAMESPACE: Final = "AWS/Lambda"
CONCURRENT_EXECUTIONS: Final = "ConcurrentExecutions"
SORT_KEYS: Final = ("created", "never-invoked", "proactive", "peak", "over-provisioning")


@dataclass(frozen=True)
class NamespacedQuery(MetricQuery):
    """A query of a metric in a namespace of its own (Lambda's), in the same GetMetricData call."""

    namespace: str = LAMBDA_NAMESPACE

    def to_api(self, namespace: str) -> dict[str, Any]:
        """The query, in this query's own namespace rather than the call's."""
        return super().to_api(self.namespace)


@dataclass(frozen=True)
class FunctionRank:
    """One function's figures over the window."""

    function_name: str
    created: int
    shut_down: int
    peak_live: int
    usage_by_init_type: Mapping[str, Usage]
    peak_concurrent_executions: float | None

    @property
    def usage(self) -> Usage:
        """All init types' classes summed."""
        return combined(self.usage_by_init_type.values())

    @property
    def never_invoked_share(self) -> float | None:
        """Never-invoked environments over classified shutdowns."""
        return self.usage.never_invoked_share

    @property
    def proactive_share(self) -> float | None:
        """On-demand environments first invoked after the threshold, over classified on-demand."""
        on_demand = self.usage_by_init_type.get(INIT_ON_DEMAND)
        return None if on_demand is None else on_demand.delayed_share

    @property
    def over_provisioning(self) -> float | None:
        """Peak live environments per peak invocation in flight (None: no invocation data)."""
        peak = self.peak_concurrent_executions
        return self.peak_live / peak if peak else None

    def to_dict(self) -> dict[str, Any]:
        """One entry of the ``functions`` list (and one CSV row)."""
        return {
            "function": self.function_name,
            "created": self.created,
            "shut_down": self.shut_down,
            "never_invoked_share": self.never_invoked_share,
            "proactive_share": self.proactive_share,
            "peak_live": self.peak_live,
            "peak_concurrent_executions": self.peak_concurrent_executions,
            "over_provisioning_ratio": self.over_provisioning,
        }


@dataclass(frozen=True)
class RecordsScanned:
    """The log groups the ranking read records from: each scanned once, whatever it holds."""

    scans: tuple[RecordScan, ...] = ()
    group_notes: tuple[str, ...] = ()  # a default group assumed, and why

    @property
    def filter_log_events_calls(self) -> int:
        """FilterLogEvents calls the whole ranking made."""
        return sum(scan.pages for scan in self.scans)

    def notes(self) -> tuple[str, ...]:
        """The calls made, the refused lines of every group in one line, and the groups assumed
        (other functions' records are not said: a shared group holds them by design)."""
        groups = len(self.scans)
        found = [
            f"environment records read from {groups} log group{'' if groups == 1 else 's'} "
            f"(FilterLogEvents, {self.filter_log_events_calls} calls)"
        ]
        refused: Counter[str] = Counter()
        for scan in self.scans:
            refused.update(scan.refused)
        said = refused_note(refused)
        if said:
            found.append(said)
        return (*found, *self.group_notes)

    def to_dict(self) -> dict[str, Any]:
        """The ``records`` object of the JSON document."""
        return {
            "filter_log_events_calls": self.filter_log_events_calls,
            "log_groups": [
                {
                    "log_group": scan.log_group,
                    "filter_log_events_calls": scan.pages,
                    "records": len(scan.records),
                    "refused": dict(sorted(scan.refused.items())),
                    "missing_group": scan.missing_group,
                }
                for scan in self.scans
            ],
        }


@dataclass(frozen=True)
class Ranking:
    """Every function's figures, ranked by ``sort_key`` (largest first)."""

    namespace: str
    window: ReportWindow
    sort_key: str
    functions: tuple[FunctionRank, ...]
    records: RecordsScanned | None = None  # None: the records were not read (no Logs client)

    @property
    def notes(self) -> tuple[str, ...]:
        """What the table says under the ranking (the JSON has ``records``)."""
        return () if self.records is None else self.records.notes()

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``report --all``."""
        return {
            "schema_version": 1,
            "namespace": self.namespace,
            "window": {
                "start": iso(self.window.start),
                "end": iso(self.window.end),
                "period_seconds": self.window.period,
                "lookback_start": iso(self.window.lookback_start),
            },
            "sorted_by": self.sort_key,
            "functions": [function.to_dict() for function in self.functions],
            "records": None if self.records is None else self.records.to_dict(),
            "notes": list(self.notes),
        }


def _list(
    cloudwatch: Any, namespace: str, metric_name: str, having: str | None = None
) -> list[dict[str, str]]:
    """Every dimension mapping ListMetrics knows for ``metric_name`` in ``namespace``.

    ``having``: only metrics with that dimension (a name-only DimensionFilter matches any value).
    """
    found: list[dict[str, str]] = []
    request: dict[str, Any] = {"Namespace": namespace, "MetricName": metric_name}
    if having is not None:
        request["Dimensions"] = [{"Name": having}]
    with aws_errors("cloudwatch:ListMetrics"):
        paginator = cloudwatch.get_paginator("list_metrics")
        for page in paginator.paginate(**request):
            for metric in page.get("Metrics", []):
                found.append({d["Name"]: d.get("Value", "") for d in metric.get("Dimensions", [])})
    return found


@dataclass(frozen=True)
class Discovered:
    """The functions in the namespace and which of their series exist."""

    functions: list[str]
    classes: dict[str, set[tuple[str, str]]]  # (InitType, FirstInvoke) series, full profile
    lean_types: dict[str, set[str]]  # EnvironmentDelta's init types, lean profile


def discover(cloudwatch: Any, namespace: str) -> Discovered:
    """The functions, per function the (InitType, FirstInvoke) series and the lean init types."""
    full = {
        dims[FUNCTION_NAME]
        for dims in _list(cloudwatch, namespace, ENVIRONMENT_INIT)
        if set(dims) == {FUNCTION_NAME}
    }
    lean: dict[str, set[str]] = {}
    for dims in _list(cloudwatch, namespace, ENVIRONMENT_DELTA):
        if set(dims) == {FUNCTION_NAME, INIT_TYPE}:
            lean.setdefault(dims[FUNCTION_NAME], set()).add(dims[INIT_TYPE])
    classes: dict[str, set[tuple[str, str]]] = {}
    # Only the FirstInvoke series: a fraction of EnvironmentShutdown's metrics, so fewer pages.
    for dims in _list(cloudwatch, namespace, ENVIRONMENT_SHUTDOWN, having=FIRST_INVOKE):
        if set(dims) == set(FIRST_INVOKE_SET):
            classes.setdefault(dims[FUNCTION_NAME], set()).add(
                (dims[INIT_TYPE], dims[FIRST_INVOKE])
            )
    return Discovered(sorted(full | set(lean)), classes, lean)


def _sum_in(series: Series, window: ReportWindow) -> float:
    return sum(v for moment, v in series.points if window.start <= moment < window.end)


def _peak_live(inits: Series, shutdowns: Series, window: ReportWindow) -> int:
    """The running sum of inits - shutdowns from the look-back start, at its window maximum."""
    change: dict[int, float] = {}
    for sign, series in ((1, inits), (-1, shutdowns)):
        for moment, value in series.points:
            index = int((moment - window.lookback_start).total_seconds() // window.period)
            change[index] = change.get(index, 0.0) + sign * value
    first = int((window.start - window.lookback_start).total_seconds() // window.period)
    last = int((window.end - window.lookback_start).total_seconds() // window.period)
    running, peak = 0.0, 0.0
    for index in range(last):
        running += change.get(index, 0.0)
        if index >= first:  # as the report's peak: the count at each window period's end
            peak = max(peak, running)
    return round(peak)


def _sort_value(rank: FunctionRank, key: str) -> float:
    value: float | None = {
        "created": rank.created,
        "never-invoked": rank.never_invoked_share,
        "proactive": rank.proactive_share,
        "peak": rank.peak_live,
        "over-provisioning": rank.over_provisioning,
    }[key]
    return -1.0 if value is None else float(value)


def _lean_as_full(
    series: Mapping[str, Series], prefix: str, types: int
) -> tuple[list[tuple[Any, float]], list[tuple[Any, float]]]:
    """EnvironmentDelta's (Sum, SampleCount) per init type as inits and shutdowns points."""
    inits: list[tuple[Any, float]] = []
    downs: list[tuple[Any, float]] = []
    for position in range(types):
        net = series[f"d{prefix}_{position}"].by_timestamp()
        for moment, count in series[f"n{prefix}_{position}"].points:
            inits.append((moment, (count + net.get(moment, 0.0)) / 2))
            downs.append((moment, (count - net.get(moment, 0.0)) / 2))
    return inits, downs


def _with(series: Series, points: Sequence[tuple[Any, float]]) -> Series:
    return Series(tuple(sorted((*series.points, *points), key=lambda point: point[0])))


def _record_classes(scan: RecordScan, window: ReportWindow) -> dict[str, dict[str, int]]:
    lives = record_figures.lives(scan.records)
    figures = record_figures.RecordFigures.of(lives, window.start, window.end)
    return {t: dict(c) for t, c in figures.classes_by_type.items()}


def scan_groups(
    logs: Any, lambda_client: Any, functions: Sequence[str], window: ReportWindow
) -> tuple[dict[str, RecordScan], RecordsScanned]:
    """Each function's own records, each distinct log group scanned once for the window.

    ``lambda_client``: to find a custom ``LoggingConfig.LogGroup`` (None: the default groups).
    """
    group_of: dict[str, str] = {}
    assumed: list[str] = []
    for function in functions:
        if lambda_client is None:
            group_of[function] = default_log_group(function)
            continue
        group, why = function_log_group(lambda_client, function)
        group_of[function] = group
        if why:
            assumed.append(why)
    # One line however many functions it concerns: the first reason stands for the rest.
    group_notes = assumed[:1]
    if len(assumed) > 1:
        group_notes = [f"{assumed[0]}; and so for {len(assumed) - 1} more functions"]
    scans: dict[str, RecordScan] = {}
    for group in dict.fromkeys(group_of.values()):  # first-seen order, each group once
        scans[group] = read_records(logs, group, window.start, window.end)
    own = {function: scans[group_of[function]].of_function(function) for function in functions}
    return own, RecordsScanned(tuple(scans.values()), tuple(group_notes))


def rank_functions(
    cloudwatch: Any,
    namespace: str,
    window: ReportWindow,
    sort_key: str = "created",
    *,
    logs: Any = None,
    lambda_client: Any = None,
) -> Ranking:
    """Discover every function in ``namespace`` and rank them; ``NoMetricsError`` if none.

    ``logs``: a CloudWatch Logs client, to read the FirstInvoke classes of functions under the
    lean profile from their records (each distinct log group scanned once); without it they are
    unknown. ``lambda_client``: to find each function's log group as ``report`` does.
    """
    found = discover(cloudwatch, namespace)
    functions, classes = found.functions, found.classes
    if not functions:
        raise NoMetricsError(
            f"no functions with concurrency-observer metrics in namespace {namespace} "
            "(ListMetrics knows metrics that received data in the last two weeks)"
        )
    series_queries: list[MetricQuery] = []
    totals_queries: list[MetricQuery] = []
    # A single period over the window when it is whole minutes, else the report's period.
    window_seconds = int((window.end - window.start).total_seconds())
    totals_period = window_seconds if window_seconds % 60 == 0 else window.period
    for index, function in enumerate(functions):
        dims = ((FUNCTION_NAME, function),)
        series_queries.append(
            MetricQuery(f"i{index}", ENVIRONMENT_INIT, dims, "Sum", window.period)
        )
        series_queries.append(
            MetricQuery(f"s{index}", ENVIRONMENT_SHUTDOWN, dims, "Sum", window.period)
        )
        totals_queries.append(
            NamespacedQuery(f"c{index}", CONCURRENT_EXECUTIONS, dims, "Maximum", totals_period)
        )
        for position, init_type in enumerate(sorted(found.lean_types.get(function, ()))):
            lean_dims = (*dims, (INIT_TYPE, init_type))
            for stat, letter in (("Sum", "d"), ("SampleCount", "n")):
                series_queries.append(
                    MetricQuery(
                        f"{letter}{index}_{position}",
                        ENVIRONMENT_DELTA,
                        lean_dims,
                        stat,
                        window.period,
                    )
                )
        for position, (init_type, first_invoke) in enumerate(sorted(classes.get(function, ()))):
            class_dims = (*dims, (INIT_TYPE, init_type), (FIRST_INVOKE, first_invoke))
            totals_queries.append(
                MetricQuery(
                    f"f{index}_{position}", ENVIRONMENT_SHUTDOWN, class_dims, "Sum", totals_period
                )
            )
    with aws_errors("cloudwatch:GetMetricData"):
        series = get_metric_series(
            cloudwatch, namespace, series_queries, window.lookback_start, window.end
        )
        totals = get_metric_series(cloudwatch, namespace, totals_queries, window.start, window.end)
    needing = [f for f in functions if f in found.lean_types and f not in classes]
    own: dict[str, RecordScan] = {}
    scanned = None
    if logs is not None:
        own, scanned = scan_groups(logs, lambda_client, needing, window)
    ranks = []
    for index, function in enumerate(functions):
        inits, downs = _lean_as_full(series, str(index), len(found.lean_types.get(function, ())))
        series[f"i{index}"] = _with(series[f"i{index}"], inits)
        series[f"s{index}"] = _with(series[f"s{index}"], downs)
        from_records = _record_classes(own[function], window) if function in own else None
        ranks.append(
            _rank(
                index,
                function,
                classes=sorted(classes.get(function, ())),
                series=series,
                totals=totals,
                window=window,
                from_records=from_records,
            )
        )
    ranks.sort(key=lambda rank: (-_sort_value(rank, sort_key), rank.function_name))
    return Ranking(namespace, window, sort_key, tuple(ranks), scanned)


def _rank(
    index: int,
    function: str,
    *,
    classes: Sequence[tuple[str, str]],
    series: Mapping[str, Series],
    totals: Mapping[str, Series],
    window: ReportWindow,
    from_records: Mapping[str, Mapping[str, int]] | None = None,
) -> FunctionRank:
    by_type: dict[str, dict[str, int]] = {t: dict(c) for t, c in (from_records or {}).items()}
    for position, (init_type, first_invoke) in enumerate(classes):
        count = round(_sum_in(totals[f"f{index}_{position}"], window))
        by_type.setdefault(init_type, {})[first_invoke] = count
    concurrency = [v for moment, v in totals[f"c{index}"].points]
    return FunctionRank(
        function_name=function,
        created=round(_sum_in(series[f"i{index}"], window)),
        shut_down=round(_sum_in(series[f"s{index}"], window)),
        peak_live=_peak_live(series[f"i{index}"], series[f"s{index}"], window),
        # Created and shut-down counts per init type are not fetched here: only the classes.
        usage_by_init_type={t: usage_from_classes(0, 0, c) for t, c in by_type.items()},
        peak_concurrent_executions=max(concurrency) if concurrency else None,
    )


def rows(ranking: Ranking) -> Iterable[dict[str, Any]]:
    """The ranked functions as flat mappings (the CSV rows)."""
    return (function.to_dict() for function in ranking.functions)
