"""The report: what the extension's metrics and environment records say about a function.

Four steps, each usable alone (``simulate`` passes clients pointed at its moto server):

1. ``resolve_window(...) -> ReportWindow`` (``figures.report_window``): the time window, aligned to
   the period, with a look-back before the start for the live series.
2. ``fetch_metrics(cloudwatch, request) -> FetchedMetrics`` (``aws.report_metrics``): ListMetrics,
   then GetMetricData for the lean ``EnvironmentDelta`` and the full profile's metrics.
3. ``read_records(logs, log_group, start, end) -> RecordScan`` (``aws.records``): the environment
   records of the environments that shut down in the window (FilterLogEvents).
4. ``build_report(request, fetched, scan) -> Report``: pure; no AWS, testable by hand.

``read_report(cloudwatch, request, logs=...)`` runs 2 to 4 and raises ``NoMetricsError`` when
there is nothing to report. ``Report.to_dict()`` is the stable JSON document.

Where each figure comes from, under either metric profile or both in turn:

- inits and shutdowns, per init type and in total: the metrics. Lean: ``(SampleCount + Sum) / 2``
  and ``(SampleCount - Sum) / 2`` of ``EnvironmentDelta``; full: ``EnvironmentInit`` and
  ``EnvironmentShutdown``; a function that ran both has both summed.
- everything else (shutdowns by reason, the FirstInvoke classes, lifetimes and their exact
  quantiles, invocations, idle time, time to first invoke): the records (``figures.records``).
- the live series: exactly from the records' init and shutdown instants, at period ends and as
  the most alive at once in each period, plus the environments the metric counts without a
  record yet (still alive at the end, or whose record was lost), per period.

Without records (an older layer, or no access to the log group) the report falls back to the
metric path as before the records existed, and says so: the live series is then the running sum
of inits minus shutdowns from the look-back start, at period ends (an environment born and gone
within one period never shows in it), and lifetimes come from CloudWatch's percentiles or are
approximated from per-period means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from concurrency_observer import environment_record as rec
from concurrency_observer.aws import platform_invocations
from concurrency_observer.aws.lambda_invocations import lambda_invocations
from concurrency_observer.aws.metrics import Series
from concurrency_observer.aws.records import RecordScan, default_log_group, read_records
from concurrency_observer.aws.report_metrics import (
    DISTRIBUTION_METRICS,
    MAXIMUM,
    SAMPLE_COUNT,
    SUM,
    FetchedMetrics,
    SeriesKey,
    fetch_lifetime_percentiles,
    fetch_metrics,
    plan_percentile_queries,
    plan_queries,
)
from concurrency_observer.errors import AwsError, UserError
from concurrency_observer.figures import platform_join
from concurrency_observer.figures import records as record_figures
from concurrency_observer.figures.platform import PlatformFigures, platform_figures
from concurrency_observer.figures.records import Life, RecordFigures
from concurrency_observer.figures.report_document import (
    JSON_SCHEMA_VERSION,
    SCOPE_ALL_VERSIONS,
    SCOPE_FUNCTION,
    SOURCE_METRICS,
    SOURCE_RECORDS,
    LivePoint,
    ObserverBill,
    RecordsRead,
    Report,
)
from concurrency_observer.figures.report_window import (
    HIGH_RESOLUTION_PERIODS,
    ReportRequest,
    ReportWindow,
    iso,
    resolve_window,
)
from concurrency_observer.figures.usage import (
    QUANTILES_FROM_CLOUDWATCH,
    Distribution,
    LifetimeQuantiles,
    Reconciliation,
    Usage,
    quantiles_from_values,
    replacements,
    survival_curve,
    usage_from_classes,
    values_from_period_means,
)
from concurrency_observer.schema import (
    ENVIRONMENT_DELTA,
    ENVIRONMENT_IDLE_TIME,
    ENVIRONMENT_INIT,
    ENVIRONMENT_INVOCATIONS,
    ENVIRONMENT_LIFETIME,
    ENVIRONMENT_SHUTDOWN,
    ENVIRONMENT_TIME_TO_FIRST_INVOKE,
    FIRST_INVOKE_CLASSES,
    INIT_PROVISIONED,
    INIT_TYPE,
    METRICS_FULL,
    METRICS_LEAN,
    SHUTDOWN_REASON,
)

__all__ = [
    "DISTRIBUTION_METRICS",
    "HIGH_RESOLUTION_PERIODS",
    "JSON_SCHEMA_VERSION",
    "MAXIMUM",
    "SAMPLE_COUNT",
    "SCOPE_ALL_VERSIONS",
    "SCOPE_FUNCTION",
    "SUM",
    "Distribution",
    "FetchedMetrics",
    "LivePoint",
    "NoMetricsError",
    "Report",
    "ReportRequest",
    "ReportWindow",
    "SeriesKey",
    "build_report",
    "fetch_lifetime_percentiles",
    "fetch_metrics",
    "iso",
    "plan_percentile_queries",
    "plan_queries",
    "read_report",
    "resolve_window",
]


class NoMetricsError(UserError):
    """There is no concurrency-observer data for the function in the window (or at all)."""


def _count(value: float) -> int:
    # Counts are sums of 1s; rounding guards against float noise, never hides real fractions.
    return round(value)


class _Grid:
    """Buckets a series onto the window's periods (robust to points CloudWatch didn't align)."""

    def __init__(self, window: ReportWindow) -> None:
        self.window = window
        self.starts = window.period_starts()
        self.first = next((i for i, m in enumerate(self.starts) if m >= window.start), 0)

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

    def values_total(self, values: Sequence[float]) -> int:
        return _count(sum(values[self.first :]))

    @property
    def ends(self) -> list[datetime]:
        step = timedelta(seconds=self.window.period)
        return [start + step for start in self.starts]


def _running_sum(values: Sequence[float]) -> list[int]:
    running, out = 0.0, []
    for value in values:
        running += value
        out.append(_count(running))
    return out


def _plus(*rows: Sequence[float]) -> list[float]:
    return [sum(column) for column in zip(*rows, strict=True)]


@dataclass
class _Counts:
    """Inits and shutdowns per period (over the look-back grid), in total and per init type."""

    inits: list[float]
    shutdowns: list[float]
    inits_by_type: dict[str, list[float]] = field(default_factory=dict)
    shutdowns_by_type: dict[str, list[float]] = field(default_factory=dict)
    profiles: set[str] = field(default_factory=set)


def _metric_counts(request: ReportRequest, fetched: FetchedMetrics, grid: _Grid) -> _Counts:
    """Both profiles summed: EnvironmentInit/Shutdown (full) and EnvironmentDelta (lean)."""
    series = fetched.series
    counts = _Counts(
        grid.values(series.get(SeriesKey(ENVIRONMENT_INIT, SUM))),
        grid.values(series.get(SeriesKey(ENVIRONMENT_SHUTDOWN, SUM))),
    )
    if any(counts.inits) or any(counts.shutdowns):
        counts.profiles.add(METRICS_FULL)
    for init_type in fetched.init_types:
        net = grid.values(series.get(SeriesKey(ENVIRONMENT_DELTA, SUM, INIT_TYPE, init_type)))
        samples = grid.values(
            series.get(SeriesKey(ENVIRONMENT_DELTA, SAMPLE_COUNT, INIT_TYPE, init_type))
        )
        lean_inits = [(n + s) / 2 for n, s in zip(samples, net, strict=True)]
        lean_downs = [(n - s) / 2 for n, s in zip(samples, net, strict=True)]
        if any(samples):
            counts.profiles.add(METRICS_LEAN)
        full_inits = grid.values(series.get(SeriesKey(ENVIRONMENT_INIT, SUM, INIT_TYPE, init_type)))
        full_downs = grid.values(
            series.get(SeriesKey(ENVIRONMENT_SHUTDOWN, SUM, INIT_TYPE, init_type))
        )
        counts.inits_by_type[init_type] = _plus(full_inits, lean_inits)
        counts.shutdowns_by_type[init_type] = _plus(full_downs, lean_downs)
        if request.version is None:  # the lean metric has no version: never in a version's total
            counts.inits = _plus(counts.inits, lean_inits)
            counts.shutdowns = _plus(counts.shutdowns, lean_downs)
    return counts


def _record_counts(lives: Sequence[Life], grid: _Grid) -> _Counts:
    """The same counts from records alone (a version's, which the lean metric cannot split)."""
    period = grid.window.period

    def by(init_type: str | None, shutdowns: bool) -> list[float]:
        return [
            float(n)
            for n in record_figures.per_period(
                lives, grid.starts, period, shutdowns=shutdowns, init_type=init_type
            )
        ]

    types = sorted({life.init_type for life in lives})
    return _Counts(
        by(None, False),
        by(None, True),
        {t: by(t, False) for t in types},
        {t: by(t, True) for t in types},
    )


@dataclass(frozen=True)
class _Live:
    """The live series over the look-back grid: at period ends, and peaks when exact."""

    total: list[int]
    by_type: dict[str, list[int]]
    peaks: list[int] | None = None
    peaks_by_type: dict[str, list[int]] = field(default_factory=dict)


def _live_from_metrics(counts: _Counts) -> _Live:
    return _Live(
        _running_sum([i - s for i, s in zip(counts.inits, counts.shutdowns, strict=True)]),
        {
            t: _running_sum(
                [i - s for i, s in zip(inits, counts.shutdowns_by_type[t], strict=True)]
            )
            for t, inits in counts.inits_by_type.items()
        },
    )


def _unrecorded(
    lives: Sequence[Life],
    grid: _Grid,
    inits: Sequence[float],
    downs: Sequence[float],
    kind: str | None,
) -> list[int]:
    """Alive per period end without a record: the metric's inits and shutdowns the records lack.

    Clamped at 0: a record and its metric datum a few milliseconds apart can fall on two sides of
    a period boundary, which is not an environment.
    """
    period = grid.window.period
    recorded_inits = record_figures.per_period(
        lives, grid.starts, period, shutdowns=False, init_type=kind
    )
    recorded_downs = record_figures.per_period(
        lives, grid.starts, period, shutdowns=True, init_type=kind
    )
    running, out = 0, []
    for i, s, ri, rs in zip(inits, downs, recorded_inits, recorded_downs, strict=True):
        running = max(0, running + _count(i) - ri - (_count(s) - rs))
        out.append(running)
    return out


def _live_from_records(lives: Sequence[Life], counts: _Counts, grid: _Grid) -> _Live:
    ends = grid.ends
    period = grid.window.period

    def one(
        kind: str | None, inits: Sequence[float], downs: Sequence[float]
    ) -> tuple[list[int], list[int]]:
        extra = _unrecorded(lives, grid, inits, downs, kind)
        alive = [
            a + e for a, e in zip(record_figures.alive_at(lives, ends, kind), extra, strict=True)
        ]
        # An environment without a record is known per period only: the in-period peak counts
        # those alive through the whole period, and never less than the period's end.
        through = [min(e, extra[i - 1] if i else 0) for i, e in enumerate(extra)]
        peaks = [
            max(p + t, a)
            for p, t, a in zip(
                record_figures.peaks_per_period(lives, grid.starts, period, kind),
                through,
                alive,
                strict=True,
            )
        ]
        return alive, peaks

    total, peaks = one(None, counts.inits, counts.shutdowns)
    zeros = [0.0] * len(grid.starts)
    by_type, peaks_by_type = {}, {}
    for kind in sorted(set(counts.inits_by_type) | {life.init_type for life in lives}):
        by_type[kind], peaks_by_type[kind] = one(
            kind, counts.inits_by_type.get(kind, zeros), counts.shutdowns_by_type.get(kind, zeros)
        )
    return _Live(total, by_type, peaks, peaks_by_type)


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


@dataclass(frozen=True)
class _PerEnvironment:
    """The figures that come from records, or from the full profile's metrics without them."""

    shutdowns_by_reason: Mapping[str, int]
    classes_by_type: Mapping[str, Mapping[str, int]]
    lifetime: Distribution
    invocations: Distribution
    idle_time: Distribution
    time_to_first_invoke: Distribution
    quantiles: LifetimeQuantiles | None
    survival: tuple[tuple[float, float], ...]


def _from_records(figures: RecordFigures) -> _PerEnvironment:
    # The records carry every per-environment figure under the same name.
    return _PerEnvironment(**{f.name: getattr(figures, f.name) for f in fields(_PerEnvironment)})


def _from_metrics(fetched: FetchedMetrics, grid: _Grid) -> _PerEnvironment:
    def total_of(key: SeriesKey) -> int:
        return _count(grid.window_total(fetched.series.get(key)))

    lifetime = _distribution(fetched, ENVIRONMENT_LIFETIME, grid)
    quantiles = _lifetime_quantiles(fetched, grid)
    return _PerEnvironment(
        shutdowns_by_reason={
            r: total_of(SeriesKey(ENVIRONMENT_SHUTDOWN, SUM, SHUTDOWN_REASON, r))
            for r in fetched.shutdown_reasons
        },
        classes_by_type={
            t: {
                c: total_of(SeriesKey(ENVIRONMENT_SHUTDOWN, SUM, INIT_TYPE, t, c))
                for c in FIRST_INVOKE_CLASSES
            }
            for t in fetched.init_types
        },
        lifetime=lifetime,
        invocations=_distribution(fetched, ENVIRONMENT_INVOCATIONS, grid),
        idle_time=_distribution(fetched, ENVIRONMENT_IDLE_TIME, grid),
        time_to_first_invoke=_distribution(fetched, ENVIRONMENT_TIME_TO_FIRST_INVOKE, grid),
        quantiles=quantiles,
        survival=tuple(survival_curve(quantiles, lifetime.maximum)),
    )


def build_report(
    request: ReportRequest,
    fetched: FetchedMetrics,
    scan: RecordScan | None = None,
    invocations: float | None = None,
) -> Report:
    """Compute the report from fetched series and records (pure: no AWS, no clock).

    ``invocations``: AWS/Lambda's ``Invocations`` over the window, for the cold-start share.
    """
    window = request.window
    grid = _Grid(window)
    # Whose record it is: only those whose own functionName (and functionVersion) say so.
    scan = scan.of_function(request.function_name, request.version) if scan else None
    scan, joined = with_platform_lines(scan)
    every = record_figures.lives(scan.records if scan else (), request.version)
    from_records = bool(every)
    by_version = from_records and request.version is not None
    counts = _record_counts(every, grid) if by_version else _metric_counts(request, fetched, grid)
    if from_records:
        live = _live_from_records(every, counts, grid)
        figures = RecordFigures.of(every, window.start, window.end)
        per_environment = _from_records(figures)
    else:
        live = _live_from_metrics(counts)
        per_environment = _from_metrics(fetched, grid)
    shown_by_type = live.by_type if request.version is None or by_version else {}
    first = grid.first
    points = tuple(
        LivePoint(
            grid.starts[i],
            live.total[i],
            {t: values[i] for t, values in shown_by_type.items()},
            None if live.peaks is None else live.peaks[i],
        )
        for i in range(first, len(grid.starts))
    )
    types = sorted(set(counts.inits_by_type) | set(per_environment.classes_by_type))
    inits_by_type = {t: grid.values_total(counts.inits_by_type.get(t, [0.0])) for t in types}
    usage_by_type = {
        t: usage_from_classes(
            inits_by_type[t],
            grid.values_total(counts.shutdowns_by_type.get(t, [0.0])),
            per_environment.classes_by_type.get(t, {}),
        )
        for t in types
    }
    has_metric_data = any(
        s.points
        for key, s in fetched.series.items()
        if key.dimension is None or key.metric == ENVIRONMENT_DELTA
    )
    report = Report(
        function_name=request.function_name,
        version=request.version,
        namespace=request.namespace,
        window=window,
        provisioned=request.provisioned,
        breakdown_scope=SCOPE_FUNCTION
        if request.version is None or by_version
        else SCOPE_ALL_VERSIONS,
        inits_total=grid.values_total(counts.inits),
        shutdowns_total=grid.values_total(counts.shutdowns),
        inits_by_type={t: n for t, n in inits_by_type.items() if n or t in counts.inits_by_type},
        shutdowns_by_reason=dict(per_environment.shutdowns_by_reason),
        live_at_start=live.total[first - 1] if first > 0 else 0,
        live=points,
        lifetime=per_environment.lifetime,
        invocations=per_environment.invocations,
        idle_time=per_environment.idle_time,
        time_to_first_invoke=per_environment.time_to_first_invoke,
        has_data=from_records or has_metric_data,
        usage_by_init_type=usage_by_type,
        lifetime_quantiles=per_environment.quantiles,
        lifetime_survival=per_environment.survival,
        reconciliation=_reconciliation(request, usage_by_type, live, counts, first),
        figures_source=SOURCE_RECORDS if from_records else SOURCE_METRICS,
        metric_profiles=tuple(sorted(counts.profiles)),
        observer_bill=_bill(fetched, scan, every, window),
        platform=_platform(scan, every, window, invocations, joined) if from_records else None,
        records_read=_records_read(scan),
    )
    warnings = _lookback_warnings(request, grid, live, fetched, per_environment.lifetime)
    notes = (
        _scope_notes(request, report, by_version)
        + _usage_notes(report, fetched)
        + _source_notes(scan, from_records, counts)
        + _unknown_notes(report, sorted({life.engine for life in every}))
    )
    return replace(report, warnings=tuple(warnings), notes=tuple(notes))


def _in_window(
    scan: RecordScan | None, every: Sequence[Life], window: ReportWindow
) -> list[Mapping[str, Any]]:
    """The records (dicts) of the environments in ``every`` that shut down in the window."""
    in_window = {
        life.environment_id for life in every if window.start <= life.shutdown < window.end
    }
    return [r for r in (scan.records if scan else ()) if str(r.get("environmentId")) in in_window]


def with_platform_lines(
    scan: RecordScan | None,
) -> tuple[RecordScan | None, platform_join.PlatformJoin | None]:
    """The scan with its records completed from the platform's lines (``figures.platform_join``),
    and what the join found; as it is when the scan did not ask for the lines."""
    if scan is None or not scan.platform_scanned:
        return scan, None
    found = platform_join.join(scan.records, scan.log_streams, scan.platform)
    return replace(scan, records=found.records), found


def _platform(
    scan: RecordScan | None,
    every: Sequence[Life],
    window: ReportWindow,
    invocations: float | None,
    joined: platform_join.PlatformJoin | None,
) -> PlatformFigures:
    """The platform's account over the window's records (figures.platform), completed from
    the platform's lines of their log streams when the scan read them."""
    return platform_figures(_in_window(scan, every, window), invocations, joined)


def _bill(
    fetched: FetchedMetrics, scan: RecordScan | None, every: Sequence[Life], window: ReportWindow
) -> ObserverBill:
    """The function's metrics and its own records in the window (never other functions')."""
    records = _in_window(scan, every, window)
    if scan and scan.record_sizes:
        sizes = scan.record_sizes
        record_bytes = sum(sizes.get(str(r[rec.ENVIRONMENT_ID]), 0) for r in records)
    else:  # a scan made by hand, without sizes per record: the window's share
        share = len(records) / len(scan.records) if scan and scan.records else 0.0
        record_bytes = round(scan.record_bytes * share) if scan else 0
    return ObserverBill(
        metric_streams=fetched.metrics_known,
        records=len(records),
        record_bytes=record_bytes,
        log_group=scan.log_group if scan else None,
    )


def _records_read(scan: RecordScan | None) -> RecordsRead | None:
    if scan is None:
        return None
    return RecordsRead(
        log_group=scan.log_group,
        records=len(scan.records),
        other_functions=scan.other_functions,
        refused=dict(scan.refused),
        duplicates=scan.duplicates,
        filter_log_events_calls=scan.pages,
    )


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
    usage_by_type: Mapping[str, Usage],
    live: _Live,
    counts: _Counts,
    first: int,
) -> Reconciliation | None:
    """requested -> allocated -> created -> peak live -> ever invoked -> replaced, or None."""
    usage = usage_by_type.get(INIT_PROVISIONED)
    if usage is None and request.provisioned is None:
        return None
    zeros = [0] * len(live.total)
    at_ends = list(live.by_type.get(INIT_PROVISIONED, zeros))
    inits = list(counts.inits_by_type.get(INIT_PROVISIONED, [0.0] * len(live.total)))
    replaced = replacements(at_ends, inits)[first:]
    peaks = live.peaks_by_type.get(INIT_PROVISIONED, at_ends)
    usage = usage or Usage(0, 0)
    window = request.window
    return Reconciliation(
        requested=request.provisioned,
        allocated=request.allocated,
        source=request.provisioned_source or (None if request.provisioned is None else "option"),
        environments_created=usage.created,
        peak_live=max(peaks[first:], default=0),
        shut_down=usage.shut_down,
        ever_invoked=usage.ever_invoked,
        never_invoked=usage.never,
        unclassified=usage.unclassified,
        replaced=sum(replaced),
        window_hours=(window.end - window.start).total_seconds() / 3600,
    )


def refused_note(refused: Mapping[str, int]) -> str | None:
    """One line: how many lines looked like records and were refused, by reason; None if none."""
    total = sum(refused.values())
    if not total:
        return None
    reasons = ", ".join(f"{count} {why}" for why, count in sorted(refused.items()))
    lines = "line" if total == 1 else "lines"
    return f"{total} {lines} that looked like environment records refused, not counted ({reasons})"


def other_functions_note(other_functions: int, log_group: str) -> str | None:
    """One line: how many records in the group were other functions'; None if none."""
    if not other_functions:
        return None
    records = "record" if other_functions == 1 else "records"
    return (
        f"{other_functions} environment {records} in {log_group} belong to other functions "
        "(their own functionName): not counted"
    )


def _record_notes(scan: RecordScan) -> list[str]:
    notes = [other_functions_note(scan.other_functions, scan.log_group), refused_note(scan.refused)]
    return [note for note in notes if note]


def _source_notes(scan: RecordScan | None, from_records: bool, counts: _Counts) -> list[str]:
    if scan is None:  # not asked for (a caller without a Logs client)
        return []
    return [*_record_notes(scan), _source_note(scan, from_records, counts)]


def _source_note(scan: RecordScan, from_records: bool, counts: _Counts) -> str:
    if from_records:
        return (
            f"per-environment figures, the live series and its peak from {len(scan.records)} "
            f"environment records in {scan.log_group} (FilterLogEvents, {scan.pages} calls); "
            "inits and shutdowns from the metrics"
        )
    where = f"none found in {scan.log_group}"
    if scan.missing_group:
        where = f"log group {scan.log_group} not found"
    if counts.profiles == {METRICS_LEAN}:
        return (
            f"no environment records ({where}): the lean metric gives inits, shutdowns and the "
            "live series only"
        )
    return (
        f"no environment records ({where}): figures from the metrics, as an older layer "
        "writes them (lifetimes approximated, live series at period ends)"
    )


def _unknown_notes(report: Report, engines: Sequence[str]) -> list[str]:
    """Why a figure is unknown (null), said once; and any disagreement, never averaged away."""
    platform = report.platform
    if platform is None:
        return []
    notes = []
    cold = platform.cold_starts
    if cold.unclassified:
        notes.append(
            f"class unknown for {cold.unclassified} of {cold.environments} environments (an "
            f"engine that did not count INVOKE; engines here: {', '.join(engines)}): cold "
            f"starts felt and their share are over the {cold.classified} classified"
            + ("" if cold.felt is not None else ", so unknown")
            + "; invocations per environment, time to first invoke and idle figures are over "
            "the environments that counted them"
        )
    lines = platform.lines
    if lines is not None and not lines.streams and platform.with_telemetry < platform.environments:
        notes.append(
            "no platform lines (INIT_START, INIT_REPORT, REPORT) in the log group: init "
            "durations and statuses only from the records' Telemetry API fields (a JSON log "
            "format with a system log level of WARN drops those lines)"
        )
    if lines is not None and lines.disagreements:
        shown = "; ".join(d.describe() for d in lines.disagreements[:3])
        more = len(lines.disagreements) - 3
        notes.append(
            f"the records and the platform's lines disagree on {len(lines.disagreements)} "
            f"field(s), both kept (the record's in the figures): {shown}"
            + (f"; and {more} more (JSON: platform.platform_lines)" if more > 0 else "")
        )
    return notes


def _usage_notes(report: Report, fetched: FetchedMetrics) -> list[str]:
    notes = []
    if any(usage.unclassified for usage in report.usage_by_init_type.values()):
        notes.append(
            "some shutdowns have no FirstInvoke class: environments that ran SHUTDOWN-only "
            "(CONCURRENCY_OBSERVER_EVENTS=SHUTDOWN, Managed Instances, the shell fallback), an "
            "older extension, or a record not (yet) delivered; never-invoked and proactive "
            "shares cover classified ones only"
        )
    quantiles = report.lifetime_quantiles
    if quantiles is not None and quantiles.source not in (
        QUANTILES_FROM_CLOUDWATCH,
        record_figures.QUANTILES_FROM_RECORDS,
    ):
        reason = fetched.percentile_note or "no percentiles"
        notes.append(
            f"lifetime quantiles approximated from per-period means ({reason}): exact only "
            "where each period holds one shutdown"
        )
    return notes


def _lookback_warnings(
    request: ReportRequest,
    grid: _Grid,
    live: _Live,
    fetched: FetchedMetrics,
    lifetime: Distribution,
) -> list[str]:
    window = request.window
    warnings = []
    for label, values in [("", live.total), *((f" ({t})", v) for t, v in live.by_type.items())]:
        lowest = min(values, default=0)
        if lowest < 0:
            at = grid.starts[list(values).index(lowest)]
            warnings.append(
                f"more shutdowns than inits{label} by {iso(at)}: environments born before the "
                f"look-back start ({iso(window.lookback_start)}) are missing from the live "
                "series; use a longer --lookback"
            )
            break  # one warning says it; the per-type ones would repeat it
    maxima = fetched.series.get(SeriesKey(ENVIRONMENT_LIFETIME, MAXIMUM), Series()).points
    longest = max([v for _, v in maxima] + [lifetime.maximum or 0.0])
    if longest >= window.lookback.total_seconds():
        warnings.append(
            f"environments have lived up to {_duration(longest)}, longer than the look-back "
            f"({_duration(window.lookback.total_seconds())}): some alive at the window start may "
            "be missing from the live series; use a longer --lookback"
        )
    return warnings


def _scope_notes(request: ReportRequest, report: Report, by_version: bool) -> list[str]:
    notes = []
    if by_version:
        notes.append(
            f"version {request.version} from its environment records: environments of that "
            "version still alive at the window's end are not counted (the lean metric has no "
            "version dimension)"
        )
        return notes
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
    if report.figures_source == SOURCE_METRICS and (
        sum(report.shutdowns_by_reason.values()) != report.shutdowns_total
    ):
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


def scan_records(logs: Any, request: ReportRequest, log_group: str | None = None) -> RecordScan:
    """The records of the environments that shut down in the request's window (FilterLogEvents).

    From the window's start: an environment alive then has its record at its shutdown, later.
    Only the function's own records (``RecordScan.of_function``): a shared group holds others'.
    """
    group = log_group or default_log_group(request.function_name)
    scan = read_records(
        logs, group, request.window.start, request.window.end, platform_lines=True
    ).of_function(request.function_name, request.version)
    return with_report_counts(logs, scan)


def with_report_counts(logs: Any, scan: RecordScan) -> RecordScan:
    """The scan with the REPORT lines counted, by a second scan of their streams only, for the
    records that did not count their invocations (``aws.platform_invocations``)."""
    streams = platform_invocations.uncounted_streams(scan.records, scan.log_streams)
    if not streams or scan.missing_group:
        return scan
    since = min(_moment_ms(r[rec.INIT_TIME]) for r in scan.records)
    until = max(_moment_ms(r[rec.SHUTDOWN_TIME]) for r in scan.records)
    counts = platform_invocations.count_reports(logs, scan.log_group, streams, since, until)
    platform = replace(
        scan.platform,
        reports_by_stream=counts.by_stream,
        report_calls=counts.calls,
        report_bytes=counts.bytes_returned,
    )
    return replace(scan, platform=platform)


def _moment_ms(epoch_ms: Any) -> datetime:
    return datetime.fromtimestamp(float(epoch_ms) / 1000, timezone.utc)


def read_report(
    cloudwatch: Any,
    request: ReportRequest,
    *,
    logs: Any = None,
    log_group: str | None = None,
) -> Report:
    """Read the records (with ``logs``) and the metrics, build the report.

    ``NoMetricsError`` when there is nothing to show.
    """
    scan, unread = None, None
    if logs is not None:
        try:
            scan = scan_records(logs, request, log_group)
        except AwsError as error:  # no logs:FilterLogEvents, say: the metrics still answer
            unread = f"environment records not read ({error}): figures from the metrics only"
    fetched = fetch_metrics(cloudwatch, request, percentiles=not (scan and scan.found))
    invocations = lambda_invocations(cloudwatch, request) if scan and scan.found else None
    report = build_report(request, fetched, scan, invocations)
    if not report.has_data:
        raise NoMetricsError(_empty_message(request, fetched))
    return report if unread is None else replace(report, notes=(*report.notes, unread))


def _empty_message(request: ReportRequest, fetched: FetchedMetrics) -> str:
    window = request.window
    who = request.function_name + (f" version {request.version}" if request.version else "")
    if fetched.metrics_known:
        return (
            f"no data for {who} in namespace {request.namespace} between "
            f"{iso(window.lookback_start)} and {iso(window.end)} (metrics exist for the "
            "function: widen --since or move --start/--end)"
        )
    return (
        f"no concurrency-observer metrics or records for function {request.function_name} in "
        f"namespace {request.namespace}: check the function name, --namespace and --region, "
        "and that the layer is attached and the function has run"
    )
