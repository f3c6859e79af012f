"""The report's per-environment figures (from the records, or the full profile's metrics
without them) and the provisioned-concurrency reconciliation: pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from concurrency_observer.figures.live_series import Live
from concurrency_observer.figures.metric_series import (
    MAXIMUM,
    SAMPLE_COUNT,
    SUM,
    FetchedMetrics,
    Series,
    SeriesKey,
)
from concurrency_observer.figures.records import RecordFigures
from concurrency_observer.figures.report_counts import Counts, Grid, as_count
from concurrency_observer.figures.report_window import ReportRequest
from concurrency_observer.figures.usage import (
    QUANTILES_FROM_CLOUDWATCH,
    Distribution,
    LifetimeQuantiles,
    Reconciliation,
    Usage,
    quantiles_from_values,
    replacements,
    survival_curve,
    values_from_period_means,
)
from concurrency_observer.schema import (
    ENVIRONMENT_IDLE_TIME,
    ENVIRONMENT_INVOCATIONS,
    ENVIRONMENT_LIFETIME,
    ENVIRONMENT_SHUTDOWN,
    ENVIRONMENT_TIME_TO_FIRST_INVOKE,
    FIRST_INVOKE_CLASSES,
    INIT_PROVISIONED,
    INIT_TYPE,
    SHUTDOWN_REASON,
)


def _distribution(fetched: FetchedMetrics, metric: str, grid: Grid) -> Distribution:
    series = fetched.series
    maxima = [
        value
        for moment, value in series.get(SeriesKey(metric, MAXIMUM), Series()).points
        if grid.in_window(moment)
    ]
    return Distribution(
        count=as_count(grid.window_total(series.get(SeriesKey(metric, SAMPLE_COUNT)))),
        total=grid.window_total(series.get(SeriesKey(metric, SUM))),
        maximum=max(maxima) if maxima else None,
    )


@dataclass(frozen=True)
class PerEnvironment:
    """The figures that come from records, or from the full profile's metrics without them."""

    shutdowns_by_reason: Mapping[str, int]
    classes_by_type: Mapping[str, Mapping[str, int]]
    lifetime: Distribution
    invocations: Distribution
    idle_time: Distribution
    time_to_first_invoke: Distribution
    quantiles: LifetimeQuantiles | None
    survival: tuple[tuple[float, float], ...]


def per_environment_from_records(figures: RecordFigures) -> PerEnvironment:
    """The per-environment figures as the records give them."""
    # The records carry every per-environment figure under the same name.
    return PerEnvironment(**{f.name: getattr(figures, f.name) for f in fields(PerEnvironment)})


def per_environment_from_metrics(fetched: FetchedMetrics, grid: Grid) -> PerEnvironment:
    """The per-environment figures from the full profile's metrics, without records."""

    def total_of(key: SeriesKey) -> int:
        return as_count(grid.window_total(fetched.series.get(key)))

    lifetime = _distribution(fetched, ENVIRONMENT_LIFETIME, grid)
    quantiles = _lifetime_quantiles(fetched, grid)
    return PerEnvironment(
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


def _lifetime_quantiles(fetched: FetchedMetrics, grid: Grid) -> LifetimeQuantiles | None:
    if fetched.lifetime_percentiles:
        return LifetimeQuantiles(QUANTILES_FROM_CLOUDWATCH, dict(fetched.lifetime_percentiles))
    counts = fetched.series.get(SeriesKey(ENVIRONMENT_LIFETIME, SAMPLE_COUNT), Series())
    sums = fetched.series.get(SeriesKey(ENVIRONMENT_LIFETIME, SUM), Series()).by_timestamp()
    pairs = [(n, sums.get(moment, 0.0)) for moment, n in counts.points if grid.in_window(moment)]
    values = values_from_period_means(pairs)
    return quantiles_from_values(values) if values else None


def reconciliation(
    request: ReportRequest,
    usage_by_type: Mapping[str, Usage],
    live: Live,
    counts: Counts,
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
