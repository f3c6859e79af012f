"""Why the environments exist: pure computations the report builds from fetched series.

- ``Usage``: per init type, environments created, shut down, and how the ones that shut down were
  used (``FirstInvoke`` class: never invoked, invoked promptly, invoked after the threshold).
- ``replacements(live, inits)``: provisioned-concurrency inits that did not raise the running
  peak of live PC environments, per period: recycled environments.
- ``LifetimeQuantiles`` and ``survival_curve``: lifetimes as a distribution, from CloudWatch's
  percentile statistics or, where the CloudWatch at hand has none (moto), from the per-period
  (SampleCount, Sum) pairs, labelled as an approximation.
- ``Reconciliation``: requested -> allocated -> PC environments created -> peak live -> ever
  invoked -> replaced per hour.

No AWS calls here: ``aws.report`` fetches, this module counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from concurrency_observer.schema import (
    FIRST_INVOKE_DELAYED,
    FIRST_INVOKE_NEVER,
    FIRST_INVOKE_PROMPT,
)

# Percentiles asked of CloudWatch for the lifetime distribution; the survival chart joins them.
LIFETIME_PERCENTILES: Final = (1, 5, 10, 25, 50, 75, 90, 95, 99)
# Quantiles shown in tables and the JSON document (a subset of LIFETIME_PERCENTILES).
SHOWN_PERCENTILES: Final = (50, 90, 99)
QUANTILES_FROM_CLOUDWATCH: Final = "cloudwatch-percentiles"
QUANTILES_FROM_PERIOD_MEANS: Final = "per-period-means"


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
        """``{"count", "mean", "max", "total"}``; mean, max and total are null when count is 0
        (no environment gave the figure: unknown, not zero)."""
        return {
            "count": self.count,
            "mean": self.mean,
            "max": self.maximum,
            "total": self.total if self.count else None,
        }


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Usage:
    """Environments of one init type in the window, and how those that shut down were used.

    ``never`` + ``prompt`` + ``delayed`` are the shutdowns the extension classified; the rest of
    ``shut_down`` (``unclassified``) ran in a SHUTDOWN-only mode, where the class is unknown.
    """

    created: int
    shut_down: int
    never: int = 0
    prompt: int = 0
    delayed: int = 0

    @property
    def classified(self) -> int:
        """Shutdowns whose FirstInvoke class is known."""
        return self.never + self.prompt + self.delayed

    @property
    def unclassified(self) -> int:
        """Shutdowns without a class (SHUTDOWN-only modes); never below 0."""
        return max(0, self.shut_down - self.classified)

    @property
    def ever_invoked(self) -> int:
        """Classified shutdowns that served at least one invoke."""
        return self.prompt + self.delayed

    @property
    def never_invoked_share(self) -> float | None:
        """Never-invoked environments over classified shutdowns (None: none classified)."""
        return _share(self.never, self.classified)

    @property
    def delayed_share(self) -> float | None:
        """Environments first invoked after the threshold over classified shutdowns."""
        return _share(self.delayed, self.classified)

    def to_dict(self) -> dict[str, Any]:
        """The per-init-type object of the JSON document."""
        return {
            "created": self.created,
            "shut_down": self.shut_down,
            "never_invoked": self.never,
            "invoked_promptly": self.prompt,
            "invoked_delayed": self.delayed,
            "unclassified": self.unclassified,
            "never_invoked_share": self.never_invoked_share,
            "invoked_delayed_share": self.delayed_share,
        }


def usage_from_classes(created: int, shut_down: int, classes: Mapping[str, int]) -> Usage:
    """A ``Usage`` from counts keyed by FirstInvoke class (missing classes count 0)."""
    return Usage(
        created=created,
        shut_down=shut_down,
        never=classes.get(FIRST_INVOKE_NEVER, 0),
        prompt=classes.get(FIRST_INVOKE_PROMPT, 0),
        delayed=classes.get(FIRST_INVOKE_DELAYED, 0),
    )


def combined(usages: Iterable[Usage]) -> Usage:
    """The sum of several init types' usage."""
    total = Usage(0, 0)
    for usage in usages:
        total = Usage(
            total.created + usage.created,
            total.shut_down + usage.shut_down,
            total.never + usage.never,
            total.prompt + usage.prompt,
            total.delayed + usage.delayed,
        )
    return total


def replacements(live: Sequence[int], inits: Sequence[float]) -> list[int]:
    """Per period, the inits that did not raise the running peak of ``live`` (recycled ones).

    ``live[p]`` is the number alive at the end of period ``p``, ``inits[p]`` the inits in it. An
    init that takes ``live`` above every earlier value is growth; any other init replaced an
    environment that went. (A replacement that overlaps the one it replaces across a period
    boundary can raise the peak once: an undercount bounded by the largest such overlap.)
    """
    out: list[int] = []
    peak = 0
    for alive, count in zip(live, inits, strict=True):
        created = round(count)
        growth = min(max(alive - peak, 0), created)
        out.append(created - growth)
        peak = max(peak, alive)
    return out


@dataclass(frozen=True)
class LifetimeQuantiles:
    """Lifetime percentiles (seconds) by percent, and where they came from."""

    source: str  # QUANTILES_FROM_CLOUDWATCH or QUANTILES_FROM_PERIOD_MEANS
    values: Mapping[int, float]

    def to_dict(self) -> dict[str, Any]:
        """``{"source", "p50", "p90", "p99"}`` (null when unknown)."""
        shown: dict[str, Any] = {"source": self.source}
        shown.update({f"p{p}": self.values.get(p) for p in SHOWN_PERCENTILES})
        return shown


def nearest_rank(values: Sequence[float], percent: float) -> float | None:
    """Nearest-rank percentile: the smallest value with ``percent``% of ``values`` at or below."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def values_from_period_means(pairs: Iterable[tuple[float, float]]) -> list[float]:
    """Each period's (SampleCount n, Sum s) as n values of s / n: exact when n is 1."""
    values: list[float] = []
    for count, total in pairs:
        whole = round(count)
        if whole > 0:
            values.extend([total / whole] * whole)
    return values


def quantiles_from_values(values: Sequence[float]) -> LifetimeQuantiles:
    """Nearest-rank percentiles of ``values`` (the per-period-means approximation)."""
    found = {p: nearest_rank(values, p) for p in LIFETIME_PERCENTILES}
    return LifetimeQuantiles(
        QUANTILES_FROM_PERIOD_MEANS, {p: v for p, v in found.items() if v is not None}
    )


def survival_curve(
    quantiles: LifetimeQuantiles | None, maximum: float | None
) -> list[tuple[float, float]]:
    """(lifetime seconds, share of environments that lived at least that long), age 0 first.

    From percentiles: at the p-th percentile, (100 - p)% lived longer; the curve ends at the
    maximum with 0. Empty when nothing is known.
    """
    if quantiles is None or not quantiles.values:
        return []
    points = [(0.0, 1.0)]
    for percent in sorted(quantiles.values):
        points.append((quantiles.values[percent], 1 - percent / 100))
    if maximum is not None:
        points.append((maximum, 0.0))
    # Lifetimes never decrease as the share falls: keep the curve monotonic for the chart.
    monotonic: list[tuple[float, float]] = []
    for seconds, share in points:
        floor = monotonic[-1][0] if monotonic else 0.0
        monotonic.append((max(seconds, floor), share))
    return monotonic


@dataclass(frozen=True)
class Reconciliation:
    """Provisioned concurrency, from what was asked to what it cost, over the window."""

    requested: int | None
    allocated: int | None
    source: str | None  # "option" (--provisioned N), "lambda-api" (--provisioned auto), None
    environments_created: int
    peak_live: int
    shut_down: int
    ever_invoked: int
    never_invoked: int
    unclassified: int
    replaced: int
    window_hours: float

    @property
    def replaced_per_hour(self) -> float | None:
        """Replacements per hour of the window."""
        return self.replaced / self.window_hours if self.window_hours > 0 else None

    @property
    def peak_to_requested(self) -> float | None:
        """Peak live PC environments per environment requested."""
        return self.peak_live / self.requested if self.requested else None

    def to_dict(self) -> dict[str, Any]:
        """The ``provisioned_concurrency`` object of the JSON document, in reconciliation order."""
        return {
            "source": self.source,
            "requested": self.requested,
            "allocated": self.allocated,
            "environments_created": self.environments_created,
            "peak_live": self.peak_live,
            "peak_to_requested": self.peak_to_requested,
            "shut_down": self.shut_down,
            "ever_invoked": self.ever_invoked,
            "never_invoked": self.never_invoked,
            "unclassified": self.unclassified,
            "replaced": self.replaced,
            "replaced_per_hour": self.replaced_per_hour,
        }
