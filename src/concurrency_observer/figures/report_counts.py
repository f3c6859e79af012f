"""The report's inits and shutdowns per period: the window's grid, from the metrics or the records.

Pure: ``figures.report_build`` counts with these, ``figures.live_series`` sums them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from concurrency_observer.figures import records as record_figures
from concurrency_observer.figures.metric_series import (
    SAMPLE_COUNT,
    SUM,
    FetchedMetrics,
    Series,
    SeriesKey,
)
from concurrency_observer.figures.records import Life
from concurrency_observer.figures.report_window import ReportRequest, ReportWindow
from concurrency_observer.schema import (
    ENVIRONMENT_DELTA,
    ENVIRONMENT_INIT,
    ENVIRONMENT_SHUTDOWN,
    INIT_TYPE,
    METRICS_FULL,
    METRICS_LEAN,
)


def as_count(value: float) -> int:
    """A summed count as a whole number."""
    # Counts are sums of 1s; rounding guards against float noise, never hides real fractions.
    return round(value)


class Grid:
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
        return as_count(sum(values[self.first :]))

    @property
    def ends(self) -> list[datetime]:
        step = timedelta(seconds=self.window.period)
        return [start + step for start in self.starts]


def running_sum(values: Sequence[float]) -> list[int]:
    """The running total at each position, as counts."""
    running, out = 0.0, []
    for value in values:
        running += value
        out.append(as_count(running))
    return out


def _plus(*rows: Sequence[float]) -> list[float]:
    return [sum(column) for column in zip(*rows, strict=True)]


@dataclass
class Counts:
    """Inits and shutdowns per period (over the look-back grid), in total and per init type."""

    inits: list[float]
    shutdowns: list[float]
    inits_by_type: dict[str, list[float]] = field(default_factory=dict)
    shutdowns_by_type: dict[str, list[float]] = field(default_factory=dict)
    profiles: set[str] = field(default_factory=set)


def metric_counts(request: ReportRequest, fetched: FetchedMetrics, grid: Grid) -> Counts:
    """Both profiles summed: EnvironmentInit/Shutdown (full) and EnvironmentDelta (lean)."""
    series = fetched.series
    counts = Counts(
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


def record_counts(lives: Sequence[Life], grid: Grid) -> Counts:
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
    return Counts(
        by(None, False),
        by(None, True),
        {t: by(t, False) for t in types},
        {t: by(t, True) for t in types},
    )
