"""What CloudWatch returned for a report, as plain values: the series, their keys, the statistics.

``aws.report_metrics`` fills a ``FetchedMetrics`` from GetMetricData, ``local.emf_report`` from
the EMF lines; ``figures.report_build`` turns either into the report. No AWS calls here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from concurrency_observer.schema import (
    ENVIRONMENT_IDLE_TIME,
    ENVIRONMENT_INVOCATIONS,
    ENVIRONMENT_LIFETIME,
    ENVIRONMENT_TIME_TO_FIRST_INVOKE,
)


@dataclass(frozen=True)
class Series:
    """Data points of one query, oldest first; a period with no data has no point."""

    points: tuple[tuple[datetime, float], ...] = ()

    @property
    def total(self) -> float:
        """The sum of all values (meaningful for ``Sum`` and ``SampleCount``)."""
        return sum(value for _, value in self.points)

    def by_timestamp(self) -> dict[datetime, float]:
        """The values keyed by their (UTC) period start."""
        return dict(self.points)


SUM: Final = "Sum"
SAMPLE_COUNT: Final = "SampleCount"
MAXIMUM: Final = "Maximum"

# Metrics sent once per environment at shutdown (full profile), summarised as count / mean / max.
DISTRIBUTION_METRICS: Final = (
    ENVIRONMENT_LIFETIME,
    ENVIRONMENT_INVOCATIONS,
    ENVIRONMENT_IDLE_TIME,
    ENVIRONMENT_TIME_TO_FIRST_INVOKE,
)


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
