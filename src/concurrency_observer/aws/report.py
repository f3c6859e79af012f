"""The report: what the extension's metrics say about a function's execution environments.

Three steps, each usable alone (``simulate`` passes a client pointed at its moto server):

1. ``resolve_window(...) -> ReportWindow``: the time window, aligned to the period, with a
   look-back before the start so environments born earlier are counted in the live series.
2. ``fetch_metrics(cloudwatch, request) -> FetchedMetrics``: ListMetrics to discover the InitType
   and ShutdownReason values, then GetMetricData for every series the report needs.
3. ``build_report(request, fetched) -> Report``: pure; no AWS, testable with hand-made series.

``read_report(cloudwatch, request)`` runs 2 and 3 and raises ``NoMetricsError`` when there is
nothing to report. ``Report.to_dict()`` is the stable JSON document (its keys are listed there).

Live environments are computed client-side as the running sum of ``EnvironmentInit -
EnvironmentShutdown`` from the look-back start (so it works without metric math, which moto
lacks): the value at a period is the number of environments alive at the *end* of that period
(CloudWatch labels a period with its start). An environment born and gone within one period
never shows in the live series, but is counted in the inits and shutdowns.

Dimension sets (schema.py): the per-InitType and per-ShutdownReason series exist only for
``[FunctionName, ...]``, not per version. With ``version`` the totals come from
``[FunctionName, FunctionVersion]`` and the breakdowns cover all versions; the report says so
(``breakdown_scope``) instead of mixing them silently, and the live series is not split by type.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from concurrency_observer.aws.metrics import (
    Dimensions,
    MetricQuery,
    Series,
    dimension_values,
    floor_to_period,
    get_metric_series,
    list_function_metrics,
)
from concurrency_observer.aws.report_usage import (
    LIFETIME_PERCENTILES,
    QUANTILES_FROM_CLOUDWATCH,
    LifetimeQuantiles,
    Reconciliation,
    Usage,
    combined,
    quantiles_from_values,
    replacements,
    survival_curve,
    usage_from_classes,
    values_from_period_means,
)
from concurrency_observer.aws.session import aws_errors
from concurrency_observer.errors import AwsError, UserError
from concurrency_observer.schema import (
    DEFAULT_NAMESPACE,
    ENVIRONMENT_IDLE_TIME,
    ENVIRONMENT_INIT,
    ENVIRONMENT_INVOCATIONS,
    ENVIRONMENT_LIFETIME,
    ENVIRONMENT_SHUTDOWN,
    ENVIRONMENT_TIME_TO_FIRST_INVOKE,
    FIRST_INVOKE,
    FIRST_INVOKE_CLASSES,
    FUNCTION_NAME,
    FUNCTION_VERSION,
    INIT_ON_DEMAND,
    INIT_PROVISIONED,
    INIT_TYPE,
    SHUTDOWN_REASON,
    SHUTDOWN_REASON_SET,
)

JSON_SCHEMA_VERSION: Final = 1
SCOPE_FUNCTION: Final = "function"
SCOPE_ALL_VERSIONS: Final = "all-versions"

SUM: Final = "Sum"
SAMPLE_COUNT: Final = "SampleCount"
MAXIMUM: Final = "Maximum"

# Metrics sent once per environment at shutdown, summarised as count / mean / max.
DISTRIBUTION_METRICS: Final = (
    ENVIRONMENT_LIFETIME,
    ENVIRONMENT_INVOCATIONS,
    ENVIRONMENT_IDLE_TIME,
    ENVIRONMENT_TIME_TO_FIRST_INVOKE,
)

# How long CloudWatch keeps data at a period (seconds): older points only exist at longer periods.
# CloudWatch keeps high-resolution (sub-minute) points 3 hours, 1-minute points 15 days, 5-minute
# points 63 days.
_RETENTION_BY_PERIOD: Final = (
    (30, timedelta(hours=3)),
    (60, timedelta(days=15)),
    (300, timedelta(days=63)),
)
# Periods GetMetricData accepts below a minute (for high-resolution data, and the local moto
# server, which keeps every raw point: the local simulation reports in seconds, not minutes).
HIGH_RESOLUTION_PERIODS: Final = (1, 5, 10, 20, 30)
_MAX_PERIODS: Final = 100_800  # GetMetricData's default MaxDatapoints: one query's worth


class NoMetricsError(UserError):
    """There is no concurrency-observer data for the function in the window (or at all)."""


@dataclass(frozen=True)
class ReportWindow:
    """``[start, end)`` aligned to ``period``; the live series counts from ``lookback_start``."""

    start: datetime
    end: datetime
    period: int
    lookback_start: datetime

    @property
    def lookback(self) -> timedelta:
        """How far before ``start`` the live series starts counting."""
        return self.start - self.lookback_start

    def period_starts(self, since: datetime | None = None) -> list[datetime]:
        """Every period start from ``since`` (default: the look-back start) up to ``end``."""
        step = timedelta(seconds=self.period)
        moment = self.lookback_start if since is None else since
        starts = []
        while moment < self.end:
            starts.append(moment)
            moment += step
        return starts


def _ceil(moment: datetime, period: int) -> datetime:
    epoch = math.ceil(moment.timestamp() / period) * period
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def resolve_window(
    *,
    now: datetime,
    period: int = 60,
    lookback: timedelta = timedelta(hours=6),
    since: timedelta | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> ReportWindow:
    """The report window: ``since`` before ``end``, or ``start``..``end``; ``end`` defaults to now.

    Start is rounded down and end up to a multiple of ``period`` (from the epoch), which is how
    CloudWatch aligns periods; naive datetimes are taken as UTC. Raises ``UserError`` on a
    period that isn't 1, 5, 10, 20, 30 or a positive multiple of 60, an empty window, or one too
    old for the period.
    """
    if period not in HIGH_RESOLUTION_PERIODS and (period <= 0 or period % 60):
        raise UserError(
            f"--period must be 1, 5, 10, 20, 30 or a positive multiple of 60 seconds, not {period}"
        )
    if lookback < timedelta(0):
        raise UserError("--lookback cannot be negative")
    now = _aware(now)
    end = now if end is None else _aware(end)
    if start is None:
        if since is None or since <= timedelta(0):
            raise UserError("give a positive --since, or --start")
        start = end - since
    start, end = floor_to_period(_aware(start), period), _ceil(end, period)
    if start >= end:
        raise UserError(f"the window is empty: start {_iso(start)} is not before end {_iso(end)}")
    lookback_start = floor_to_period(start - lookback, period)
    if (end - lookback_start).total_seconds() / period > _MAX_PERIODS:
        raise UserError("too many periods in the window and look-back: use a larger --period")
    for short_period, kept in _RETENTION_BY_PERIOD:
        if period <= short_period and lookback_start < now - kept:
            kept_for = f"{kept.days} days" if kept.days else f"{kept.seconds // 3600} hours"
            raise UserError(
                f"CloudWatch keeps {period}-second data for {kept_for}: "
                "use a larger --period for a window (with its look-back) that old"
            )
    return ReportWindow(start=start, end=end, period=period, lookback_start=lookback_start)


@dataclass(frozen=True)
class ReportRequest:
    """What to report on; ``provisioned`` is the concurrency the user asked for, for comparison.

    ``allocated`` and ``provisioned_source`` (``option`` or ``lambda-api``) come with
    ``--provisioned auto``, which reads the function's configuration (``aws.provisioned``).
    """

    function_name: str
    window: ReportWindow
    namespace: str = DEFAULT_NAMESPACE
    version: str | None = None
    provisioned: int | None = None
    allocated: int | None = None
    provisioned_source: str | None = None
    provisioned_configs: str = ""  # per qualifier, when read from Lambda (for a note)

    @property
    def totals_dimensions(self) -> Dimensions:
        """The dimension set the totals and the per-environment figures are read from."""
        if self.version is None:
            return ((FUNCTION_NAME, self.function_name),)
        return ((FUNCTION_NAME, self.function_name), (FUNCTION_VERSION, self.version))


@dataclass(frozen=True)
class SeriesKey:
    """Which series: a metric's statistic, for the totals (``dimension`` None) or one breakdown."""

    metric: str
    stat: str
    dimension: str | None = None
    value: str | None = None
    first_invoke: str | None = None  # with dimension INIT_TYPE: the [.., FirstInvoke] series


@dataclass(frozen=True)
class FetchedMetrics:
    """What CloudWatch returned: discovered breakdown values and every series, by key."""

    init_types: tuple[str, ...]
    shutdown_reasons: tuple[str, ...]
    series: Mapping[SeriesKey, Series]
    metrics_known: int = 0  # metrics ListMetrics knows for the function (0: maybe a wrong name)
    # Lifetime percentiles over the window (percent: seconds) when CloudWatch gave them; else
    # None and ``percentile_note`` says why (the report then approximates from period means).
    lifetime_percentiles: Mapping[int, float] | None = None
    percentile_note: str | None = None


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


def fetch_metrics(cloudwatch: Any, request: ReportRequest) -> FetchedMetrics:
    """Discover the breakdown values (ListMetrics), then read every series (GetMetricData)."""
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
    percentiles, note = (None, None)
    # Only worth a call when some environment shut down (and reported a lifetime).
    if series[SeriesKey(ENVIRONMENT_LIFETIME, SAMPLE_COUNT)].points:
        percentiles, note = fetch_lifetime_percentiles(cloudwatch, request)
    return FetchedMetrics(
        tuple(init_types),
        tuple(reasons),
        series,
        metrics_known=len(known),
        lifetime_percentiles=percentiles,
        percentile_note=note,
    )


@dataclass(frozen=True)
class Distribution:
    """A per-environment figure over the environments that shut down in the window."""

    count: int
    total: float
    maximum: float | None

    @property
    def mean(self) -> float | None:
        """Total over count, or None when no environment reported it."""
        return self.total / self.count if self.count else None

    def to_dict(self) -> dict[str, Any]:
        """``{"count", "mean", "max", "total"}``; mean and max are null when count is 0."""
        return {"count": self.count, "mean": self.mean, "max": self.maximum, "total": self.total}


@dataclass(frozen=True)
class LivePoint:
    """Environments alive at the end of the period starting at ``timestamp``."""

    timestamp: datetime
    total: int
    by_init_type: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """Every figure the renderers show; ``to_dict()`` is the JSON form."""

    function_name: str
    version: str | None
    namespace: str
    window: ReportWindow
    provisioned: int | None
    breakdown_scope: str
    inits_total: int
    shutdowns_total: int
    inits_by_type: Mapping[str, int]
    shutdowns_by_reason: Mapping[str, int]
    live_at_start: int
    live: tuple[LivePoint, ...]
    lifetime: Distribution
    invocations: Distribution
    idle_time: Distribution
    time_to_first_invoke: Distribution
    has_data: bool
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    # Why the environments exist (FirstInvoke classes), per init type; all versions.
    usage_by_init_type: Mapping[str, Usage] = field(default_factory=dict)
    lifetime_quantiles: LifetimeQuantiles | None = None
    lifetime_survival: tuple[tuple[float, float], ...] = ()
    reconciliation: Reconciliation | None = None
    # Set by ``report --cross-check`` (aws.cross_check.CrossCheck.to_dict()).
    cross_check: Mapping[str, Any] | None = None

    @property
    def init_types(self) -> list[str]:
        """The init types the live series is split by (none when reporting one version)."""
        types: set[str] = set()
        for point in self.live:
            types.update(point.by_init_type)
        return sorted(types)

    @property
    def live_peak(self) -> int:
        """The most environments alive at the end of any period of the window."""
        return max((point.total for point in self.live), default=self.live_at_start)

    @property
    def live_peak_at(self) -> datetime | None:
        """The start of the first period where the peak was reached."""
        peak = self.live_peak
        return next((point.timestamp for point in self.live if point.total == peak), None)

    @property
    def live_current(self) -> int:
        """Environments alive at the end of the window (now, unless ``--end`` is in the past)."""
        return self.live[-1].total if self.live else self.live_at_start

    @property
    def usage(self) -> Usage:
        """Every init type's usage summed."""
        return combined(self.usage_by_init_type.values())

    @property
    def proactive_share(self) -> float | None:
        """On-demand environments first invoked after the threshold over classified on-demand."""
        on_demand = self.usage_by_init_type.get(INIT_ON_DEMAND)
        return on_demand.delayed_share if on_demand is not None else None

    @property
    def peak_to_provisioned(self) -> float | None:
        """Peak live environments per provisioned environment requested."""
        return self.live_peak / self.provisioned if self.provisioned else None

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON document. Keys (times are ISO 8601 UTC, ``...Z``):

        - ``schema_version`` (1), ``function``, ``version`` (null: all versions), ``namespace``
        - ``window``: ``start``, ``end``, ``period_seconds``, ``lookback_start``
        - ``breakdown_scope``: ``function`` or ``all-versions`` (the by-type/by-reason counts
          cover every version of the function even when ``version`` is set)
        - ``inits``: ``total``, ``by_init_type`` {type: count}
        - ``shutdowns``: ``total``, ``by_reason`` {reason: count}
        - ``live``: ``at_start``, ``peak``, ``peak_at``, ``current``, ``series``: a list of
          {``timestamp``, ``total``, ``by_init_type`` {type: count}}, one per period
        - ``lifetime_seconds``, ``idle_time_seconds``, ``time_to_first_invoke_seconds``,
          ``invocations_per_environment``: {``count``, ``mean``, ``max``, ``total``}
        - ``provisioned``: null, or {``requested``, ``peak_ratio``}
        - ``environments_by_init_type``: {type: {``created``, ``shut_down``, ``never_invoked``,
          ``invoked_promptly``, ``invoked_delayed``, ``unclassified``, ``never_invoked_share``,
          ``invoked_delayed_share``}}, the classes counted over the environments that shut down
          in the window (all versions)
        - ``shares``: {``never_invoked``, ``proactive``} (null when nothing was classified)
        - ``lifetime_quantiles``: null, or {``source``, ``p50``, ``p90``, ``p99``}
        - ``lifetime_survival``: a list of {``seconds``, ``surviving_share``}
        - ``provisioned_concurrency``: null, or the reconciliation {``source``, ``requested``,
          ``allocated``, ``environments_created``, ``peak_live``, ``peak_to_requested``,
          ``shut_down``, ``ever_invoked``, ``never_invoked``, ``unclassified``, ``replaced``,
          ``replaced_per_hour``}
        - ``cross_check``: null, or what ``--cross-check`` found (aws.cross_check)
        - ``warnings``, ``notes``: lists of sentences
        """
        return {
            "schema_version": JSON_SCHEMA_VERSION,
            "function": self.function_name,
            "version": self.version,
            "namespace": self.namespace,
            "window": {
                "start": _iso(self.window.start),
                "end": _iso(self.window.end),
                "period_seconds": self.window.period,
                "lookback_start": _iso(self.window.lookback_start),
            },
            "breakdown_scope": self.breakdown_scope,
            "inits": {"total": self.inits_total, "by_init_type": dict(self.inits_by_type)},
            "shutdowns": {
                "total": self.shutdowns_total,
                "by_reason": dict(self.shutdowns_by_reason),
            },
            "live": {
                "at_start": self.live_at_start,
                "peak": self.live_peak,
                "peak_at": _iso(self.live_peak_at) if self.live_peak_at else None,
                "current": self.live_current,
                "series": [
                    {
                        "timestamp": _iso(point.timestamp),
                        "total": point.total,
                        "by_init_type": dict(point.by_init_type),
                    }
                    for point in self.live
                ],
            },
            "lifetime_seconds": self.lifetime.to_dict(),
            "idle_time_seconds": self.idle_time.to_dict(),
            "time_to_first_invoke_seconds": self.time_to_first_invoke.to_dict(),
            "invocations_per_environment": self.invocations.to_dict(),
            "provisioned": None
            if self.provisioned is None
            else {"requested": self.provisioned, "peak_ratio": self.peak_to_provisioned},
            "environments_by_init_type": {
                init_type: usage.to_dict() for init_type, usage in self.usage_by_init_type.items()
            },
            "shares": {
                "never_invoked": self.usage.never_invoked_share,
                "proactive": self.proactive_share,
            },
            "lifetime_quantiles": None
            if self.lifetime_quantiles is None
            else self.lifetime_quantiles.to_dict(),
            "lifetime_survival": [
                {"seconds": seconds, "surviving_share": share}
                for seconds, share in self.lifetime_survival
            ],
            "provisioned_concurrency": None
            if self.reconciliation is None
            else self.reconciliation.to_dict(),
            "cross_check": None if self.cross_check is None else dict(self.cross_check),
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }


def iso(moment: datetime) -> str:
    """``moment`` as ISO 8601 UTC to the second, ``...Z`` (the JSON documents' time format)."""
    return _iso(moment)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _count(value: float) -> int:
    # Counts are sums of 1s; rounding guards against float noise, never hides real fractions.
    return round(value)


class _Grid:
    """Buckets a series onto the window's periods (robust to points CloudWatch didn't align)."""

    def __init__(self, window: ReportWindow) -> None:
        self.window = window
        self.starts = window.period_starts()

    def index(self, moment: datetime) -> int:
        offset = (moment - self.window.lookback_start).total_seconds()
        return int(offset // self.window.period)

    def values(self, series: Series | None) -> list[float]:
        values = [0.0] * len(self.starts)
        for moment, value in series.points if series else ():
            position = self.index(moment)
            if 0 <= position < len(values):
                values[position] += value
        return values

    def in_window(self, moment: datetime) -> bool:
        return self.window.start <= moment < self.window.end

    def window_total(self, series: Series | None) -> float:
        return sum(v for moment, v in series.points if self.in_window(moment)) if series else 0.0


def _running_sum(values: Sequence[float]) -> list[int]:
    running, out = 0.0, []
    for value in values:
        running += value
        out.append(_count(running))
    return out


def _distribution(fetched: FetchedMetrics, metric: str, grid: _Grid) -> Distribution:
    series = fetched.series
    maxima = [
        value
        for moment, value in series.get(SeriesKey(metric, MAXIMUM), Series()).points
        if grid.in_window(moment)
    ]
    return Distribution(
        count=_count(grid.window_total(series.get(SeriesKey(metric, SAMPLE_COUNT)))),
        total=grid.window_total(series.get(SeriesKey(metric, SUM))),
        maximum=max(maxima) if maxima else None,
    )


def build_report(request: ReportRequest, fetched: FetchedMetrics) -> Report:
    """Compute the report from fetched series (pure: no AWS, no clock)."""
    window = request.window
    grid = _Grid(window)
    series = fetched.series
    split_live = request.version is None

    def total_of(key: SeriesKey) -> int:
        return _count(grid.window_total(series.get(key)))

    init_values = grid.values(series.get(SeriesKey(ENVIRONMENT_INIT, SUM)))
    shutdown_values = grid.values(series.get(SeriesKey(ENVIRONMENT_SHUTDOWN, SUM)))
    live_all = _running_sum([i - s for i, s in zip(init_values, shutdown_values, strict=True)])
    # Per init type from the function-wide series; shown in the live series only without a
    # version (they cover all versions), but the PC reconciliation always needs them.
    live_by_type: dict[str, list[int]] = {}
    inits_by_type_values: dict[str, list[float]] = {}
    for init_type in fetched.init_types:
        inits = grid.values(series.get(SeriesKey(ENVIRONMENT_INIT, SUM, INIT_TYPE, init_type)))
        downs = grid.values(series.get(SeriesKey(ENVIRONMENT_SHUTDOWN, SUM, INIT_TYPE, init_type)))
        inits_by_type_values[init_type] = inits
        live_by_type[init_type] = _running_sum([i - s for i, s in zip(inits, downs, strict=True)])
    shown_by_type = live_by_type if split_live else {}

    first = next((i for i, moment in enumerate(grid.starts) if moment >= window.start), 0)
    live = tuple(
        LivePoint(
            grid.starts[i],
            live_all[i],
            {init_type: values[i] for init_type, values in shown_by_type.items()},
        )
        for i in range(first, len(grid.starts))
    )
    live_at_start = live_all[first - 1] if first > 0 else 0

    inits_by_type = {
        t: total_of(SeriesKey(ENVIRONMENT_INIT, SUM, INIT_TYPE, t)) for t in fetched.init_types
    }
    shutdowns_by_reason = {
        r: total_of(SeriesKey(ENVIRONMENT_SHUTDOWN, SUM, SHUTDOWN_REASON, r))
        for r in fetched.shutdown_reasons
    }
    lifetime = _distribution(fetched, ENVIRONMENT_LIFETIME, grid)
    usage_by_type = {
        t: usage_from_classes(
            inits_by_type[t],
            total_of(SeriesKey(ENVIRONMENT_SHUTDOWN, SUM, INIT_TYPE, t)),
            {
                c: total_of(SeriesKey(ENVIRONMENT_SHUTDOWN, SUM, INIT_TYPE, t, c))
                for c in FIRST_INVOKE_CLASSES
            },
        )
        for t in fetched.init_types
    }
    quantiles = _lifetime_quantiles(fetched, grid)
    reconciliation = _reconciliation(
        request,
        usage_by_type=usage_by_type,
        live_by_type=live_by_type,
        inits_by_type=inits_by_type_values,
        first=first,
        live_all=live_all,
    )
    report = Report(
        function_name=request.function_name,
        version=request.version,
        namespace=request.namespace,
        window=window,
        provisioned=request.provisioned,
        breakdown_scope=SCOPE_FUNCTION if request.version is None else SCOPE_ALL_VERSIONS,
        inits_total=total_of(SeriesKey(ENVIRONMENT_INIT, SUM)),
        shutdowns_total=total_of(SeriesKey(ENVIRONMENT_SHUTDOWN, SUM)),
        inits_by_type=inits_by_type,
        shutdowns_by_reason=shutdowns_by_reason,
        live_at_start=live_at_start,
        live=live,
        lifetime=lifetime,
        invocations=_distribution(fetched, ENVIRONMENT_INVOCATIONS, grid),
        idle_time=_distribution(fetched, ENVIRONMENT_IDLE_TIME, grid),
        time_to_first_invoke=_distribution(fetched, ENVIRONMENT_TIME_TO_FIRST_INVOKE, grid),
        # The totals only: with a version, the all-versions breakdowns don't make it "data".
        has_data=any(s.points for key, s in series.items() if key.dimension is None),
        usage_by_init_type=usage_by_type,
        lifetime_quantiles=quantiles,
        lifetime_survival=tuple(survival_curve(quantiles, lifetime.maximum)),
        reconciliation=reconciliation,
    )
    warnings = _lookback_warnings(request, grid, live_all, shown_by_type, fetched)
    notes = _scope_notes(request, report) + _usage_notes(report, fetched)
    return replace(report, warnings=tuple(warnings), notes=tuple(notes))


def _lifetime_quantiles(fetched: FetchedMetrics, grid: _Grid) -> LifetimeQuantiles | None:
    if fetched.lifetime_percentiles:
        return LifetimeQuantiles(QUANTILES_FROM_CLOUDWATCH, dict(fetched.lifetime_percentiles))
    counts = fetched.series.get(SeriesKey(ENVIRONMENT_LIFETIME, SAMPLE_COUNT), Series())
    sums = fetched.series.get(SeriesKey(ENVIRONMENT_LIFETIME, SUM), Series()).by_timestamp()
    pairs = [(n, sums.get(moment, 0.0)) for moment, n in counts.points if grid.in_window(moment)]
    values = values_from_period_means(pairs)
    return quantiles_from_values(values) if values else None


def _reconciliation(
    request: ReportRequest,
    *,
    usage_by_type: Mapping[str, Usage],
    live_by_type: Mapping[str, Sequence[int]],
    inits_by_type: Mapping[str, Sequence[float]],
    first: int,
    live_all: Sequence[int],
) -> Reconciliation | None:
    """requested -> allocated -> created -> peak live -> ever invoked -> replaced, or None."""
    usage = usage_by_type.get(INIT_PROVISIONED)
    if usage is None and request.provisioned is None:
        return None
    live = list(live_by_type.get(INIT_PROVISIONED, [0] * len(live_all)))
    inits = list(inits_by_type.get(INIT_PROVISIONED, [0.0] * len(live_all)))
    replaced = replacements(live, inits)[first:]
    usage = usage or Usage(0, 0)
    window = request.window
    return Reconciliation(
        requested=request.provisioned,
        allocated=request.allocated,
        source=request.provisioned_source or (None if request.provisioned is None else "option"),
        environments_created=usage.created,
        peak_live=max(live[first:], default=0),  # as the report's peak: at period ends
        shut_down=usage.shut_down,
        ever_invoked=usage.ever_invoked,
        never_invoked=usage.never,
        unclassified=usage.unclassified,
        replaced=sum(replaced),
        window_hours=(window.end - window.start).total_seconds() / 3600,
    )


def _usage_notes(report: Report, fetched: FetchedMetrics) -> list[str]:
    notes = []
    if any(usage.unclassified for usage in report.usage_by_init_type.values()):
        notes.append(
            "some shutdowns have no FirstInvoke class: environments that ran SHUTDOWN-only "
            "(CONCURRENCY_OBSERVER_EVENTS=SHUTDOWN, Managed Instances, the shell fallback) or an "
            "older extension; never-invoked and proactive shares cover classified ones only"
        )
    quantiles = report.lifetime_quantiles
    if quantiles is not None and quantiles.source != QUANTILES_FROM_CLOUDWATCH:
        reason = fetched.percentile_note or "no percentiles"
        notes.append(
            f"lifetime quantiles approximated from per-period means ({reason}): exact only "
            "where each period holds one shutdown"
        )
    return notes


def _lookback_warnings(
    request: ReportRequest,
    grid: _Grid,
    live_all: Sequence[int],
    live_by_type: Mapping[str, Sequence[int]],
    fetched: FetchedMetrics,
) -> list[str]:
    window = request.window
    warnings = []
    for label, values in [("", live_all), *((f" ({t})", v) for t, v in live_by_type.items())]:
        lowest = min(values, default=0)
        if lowest < 0:
            at = grid.starts[list(values).index(lowest)]
            warnings.append(
                f"more shutdowns than inits{label} by {_iso(at)}: environments born before the "
                f"look-back start ({_iso(window.lookback_start)}) are missing from the live "
                "series; use a longer --lookback"
            )
            break  # one warning says it; the per-type ones would repeat it
    longest = max(
        (
            v
            for _, v in fetched.series.get(
                SeriesKey(ENVIRONMENT_LIFETIME, MAXIMUM), Series()
            ).points
        ),
        default=0.0,
    )
    if longest >= window.lookback.total_seconds():
        warnings.append(
            f"environments have lived up to {_duration(longest)}, longer than the look-back "
            f"({_duration(window.lookback.total_seconds())}): some alive at the window start may "
            "be missing from the live series; use a longer --lookback"
        )
    return warnings


def _scope_notes(request: ReportRequest, report: Report) -> list[str]:
    notes = []
    if request.version is not None:
        notes.append(
            f"inits by init type and shutdowns by reason cover all versions of "
            f"{request.function_name}: the metrics have no per-version breakdown "
            "(dimension sets [FunctionName, InitType] and [FunctionName, ShutdownReason]); "
            f"the totals and the live series are for version {request.version} only. The "
            "FirstInvoke classes and the provisioned-concurrency reconciliation also cover all "
            "versions ([FunctionName, InitType, FirstInvoke])"
        )
        return notes
    if sum(report.inits_by_type.values()) != report.inits_total:
        notes.append(
            "inits by init type don't add up to the total: ListMetrics may not list a new "
            "InitType yet (it can lag a few minutes)"
        )
    if sum(report.shutdowns_by_reason.values()) != report.shutdowns_total:
        notes.append(
            "shutdowns by reason don't add up to the total: ListMetrics may not list a new "
            "ShutdownReason yet (it can lag a few minutes)"
        )
    return notes


def _duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def read_report(cloudwatch: Any, request: ReportRequest) -> Report:
    """Fetch and build the report; ``NoMetricsError`` when there is nothing to show."""
    fetched = fetch_metrics(cloudwatch, request)
    report = build_report(request, fetched)
    if not report.has_data:
        raise NoMetricsError(_empty_message(request, fetched))
    return report


def _empty_message(request: ReportRequest, fetched: FetchedMetrics) -> str:
    window = request.window
    who = request.function_name + (f" version {request.version}" if request.version else "")
    if fetched.metrics_known:
        return (
            f"no data for {who} in namespace {request.namespace} between "
            f"{_iso(window.lookback_start)} and {_iso(window.end)} (metrics exist for the "
            "function: widen --since or move --start/--end)"
        )
    return (
        f"no concurrency-observer metrics for function {request.function_name} in namespace "
        f"{request.namespace}: check the function name, --namespace and --region, and that the "
        "layer is attached and the function has run"
    )
