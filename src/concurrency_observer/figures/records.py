"""The report's figures from environment records: pure functions over record dicts, no AWS.

One aggregation path: ``report`` on AWS, ``simulate`` against moto and the tests all hand the
records ``aws.records`` read (or hand-made ones) to these functions.

- ``lives(records)``: each record as a typed ``Life`` (init and shutdown instants, reason, ...).
- ``RecordFigures.of(lives, start, end)``: what the environments that shut down in the window
  say: shutdowns by reason and by init type, FirstInvoke classes, the per-environment
  distributions, exact lifetime quantiles and the survival curve.
- ``alive_at(lives, moments)``, ``peak(lives, start, end)``: live environments at any instant,
  exactly, from the init and shutdown instants; ``per_period(...)``: inits or shutdowns per period
  (the live series adds the environments still alive, which have no record yet, from the metric).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from concurrency_observer import environment_record as rec
from concurrency_observer.figures.usage import (
    LIFETIME_PERCENTILES,
    Distribution,
    LifetimeQuantiles,
    nearest_rank,
)

QUANTILES_FROM_RECORDS: Final = "records"
# Beyond this many environments the survival curve is drawn through the percentiles (a chart
# gains nothing from more points).
_SURVIVAL_POINTS: Final = 200


@dataclass(frozen=True)
class Life:
    """One environment's life, as its record tells it."""

    environment_id: str
    function_version: str
    init_type: str
    init: datetime
    shutdown: datetime
    reason: str
    lifetime_s: float
    idle_s: float
    invocations: int | None = None
    time_to_first_invoke_s: float | None = None
    first_invoke: str | None = None
    engine: str = rec.ENGINE_PYTHON
    profile: str = rec.PROFILE_LEAN


def _moment(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, timezone.utc)


def _optional_number(record: Mapping[str, Any], name: str) -> float | None:
    value = record.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def life_of(record: Mapping[str, Any]) -> Life:
    """The typed view of a record (``aws.records`` has validated it: every value is finite,
    non-negative and bounded, so no figure below can overflow, turn NaN or go negative)."""
    invocations = _optional_number(record, rec.INVOCATIONS)
    ttfi = _optional_number(record, rec.TIME_TO_FIRST_INVOKE_MS)
    first_invoke = record.get(rec.FIRST_INVOKE)
    return Life(
        environment_id=str(record[rec.ENVIRONMENT_ID]),
        function_version=str(record[rec.FUNCTION_VERSION]),
        init_type=str(record[rec.INIT_TYPE]),
        init=_moment(int(record[rec.INIT_TIME])),
        shutdown=_moment(int(record[rec.SHUTDOWN_TIME])),
        reason=str(record[rec.SHUTDOWN_REASON]),
        lifetime_s=float(record[rec.LIFETIME_MS]) / 1000,
        idle_s=float(record[rec.IDLE_MS]) / 1000,
        invocations=None if invocations is None else round(invocations),
        time_to_first_invoke_s=None if ttfi is None else ttfi / 1000,
        first_invoke=first_invoke if isinstance(first_invoke, str) else None,
        engine=str(record.get(rec.ENGINE, rec.ENGINE_PYTHON)),
        profile=str(record.get(rec.METRICS_PROFILE, rec.PROFILE_LEAN)),
    )


def lives(records: Iterable[Mapping[str, Any]], version: str | None = None) -> list[Life]:
    """Every record as a ``Life`` (only ``version``'s when given), in shutdown order."""
    found = [life_of(record) for record in records]
    if version is not None:
        found = [life for life in found if life.function_version == version]
    return sorted(found, key=lambda life: (life.shutdown, life.environment_id))


def distribution(values: Sequence[float]) -> Distribution:
    """Count, total and maximum of ``values``."""
    return Distribution(len(values), float(sum(values)), max(values) if values else None)


def exact_quantiles(lifetimes: Sequence[float]) -> LifetimeQuantiles | None:
    """Nearest-rank lifetime percentiles of every environment (None when there is none)."""
    if not lifetimes:
        return None
    found = {p: nearest_rank(lifetimes, p) for p in LIFETIME_PERCENTILES}
    return LifetimeQuantiles(
        QUANTILES_FROM_RECORDS, {p: v for p, v in found.items() if v is not None}
    )


def survival(lifetimes: Sequence[float]) -> list[tuple[float, float]]:
    """(lifetime seconds, share that lived at least that long): the exact step curve.

    Every lifetime is a step down by 1/n; above ``_SURVIVAL_POINTS`` environments, one step per
    percentile and the maximum.
    """
    ordered = sorted(lifetimes)
    count = len(ordered)
    if not count:
        return []
    points = [(0.0, 1.0)]
    if count <= _SURVIVAL_POINTS:
        points.extend((value, 1 - (index + 1) / count) for index, value in enumerate(ordered))
        return points
    for percent in range(1, 100):
        value = nearest_rank(ordered, percent)
        assert value is not None
        points.append((value, 1 - percent / 100))
    points.append((ordered[-1], 0.0))
    return points


@dataclass(frozen=True)
class RecordFigures:
    """What the records of the environments that shut down in ``[start, end)`` say."""

    lives: tuple[Life, ...]
    shutdowns_by_reason: Mapping[str, int]
    shutdowns_by_type: Mapping[str, int]
    classes_by_type: Mapping[str, Mapping[str, int]]
    invocations_by_type: Mapping[str, int]
    lifetime: Distribution
    invocations: Distribution
    idle_time: Distribution
    time_to_first_invoke: Distribution
    quantiles: LifetimeQuantiles | None
    survival: tuple[tuple[float, float], ...]
    profiles: tuple[str, ...]
    engines: tuple[str, ...]

    @classmethod
    def of(cls, every: Sequence[Life], start: datetime, end: datetime) -> RecordFigures:
        """The figures of the lives in ``every`` that ended in ``[start, end)``."""
        ended = tuple(life for life in every if start <= life.shutdown < end)
        classes: dict[str, Counter[str]] = {}
        invocations: Counter[str] = Counter()
        for life in ended:
            if life.first_invoke is not None:
                classes.setdefault(life.init_type, Counter())[life.first_invoke] += 1
            if life.invocations is not None:
                invocations[life.init_type] += life.invocations
        lifetimes = [life.lifetime_s for life in ended]
        return cls(
            lives=ended,
            shutdowns_by_reason=dict(Counter(life.reason for life in ended)),
            shutdowns_by_type=dict(Counter(life.init_type for life in ended)),
            classes_by_type={t: dict(counts) for t, counts in classes.items()},
            invocations_by_type=dict(invocations),
            lifetime=distribution(lifetimes),
            invocations=distribution(
                [float(life.invocations) for life in ended if life.invocations is not None]
            ),
            idle_time=distribution([life.idle_s for life in ended]),
            time_to_first_invoke=distribution(
                [
                    life.time_to_first_invoke_s
                    for life in ended
                    if life.time_to_first_invoke_s is not None
                ]
            ),
            quantiles=exact_quantiles(lifetimes),
            survival=tuple(survival(lifetimes)),
            profiles=tuple(sorted({life.profile for life in ended})),
            engines=tuple(sorted({life.engine for life in ended})),
        )


def _of_type(every: Iterable[Life], init_type: str | None) -> list[Life]:
    return [life for life in every if init_type is None or life.init_type == init_type]


def alive_at(
    every: Iterable[Life], moments: Sequence[datetime], init_type: str | None = None
) -> list[int]:
    """Environments alive just before each moment: born before it, not shut down before it.

    The metric's view at a period's end: a datum stamped at the end falls in the next period.
    """
    chosen = _of_type(every, init_type)
    inits = sorted(life.init for life in chosen)
    shutdowns = sorted(life.shutdown for life in chosen)
    return [
        bisect.bisect_left(inits, moment) - bisect.bisect_left(shutdowns, moment)
        for moment in moments
    ]


def peak(
    every: Iterable[Life], start: datetime, end: datetime, init_type: str | None = None
) -> tuple[int, datetime | None]:
    """The most environments alive at once in ``[start, end)`` and the first instant of it.

    A sweep over the init (+1) and shutdown (-1) instants; at a tie a shutdown goes first, so an
    environment replaced in the same millisecond is not counted twice.
    """
    chosen = _of_type(every, init_type)
    events = sorted(
        [(life.init, 1) for life in chosen] + [(life.shutdown, -1) for life in chosen],
        key=lambda event: (event[0], event[1]),
    )
    alive = sum(1 for life in chosen if life.init < start <= life.shutdown)
    best, best_at = alive, (start if alive else None)
    for moment, step in events:
        if moment < start:
            continue  # already in the count alive at the start
        if moment >= end:
            break
        alive += step
        if alive > best:
            best, best_at = alive, moment
    return best, best_at


def per_period(
    every: Iterable[Life],
    starts: Sequence[datetime],
    period: int,
    *,
    shutdowns: bool,
    init_type: str | None = None,
) -> list[int]:
    """Inits (or ``shutdowns``) of the lives per period starting at ``starts``."""
    counts = [0] * len(starts)
    if not starts:
        return counts
    step = timedelta(seconds=period)
    for life in _of_type(every, init_type):
        moment = life.shutdown if shutdowns else life.init
        index = int((moment - starts[0]) / step)
        if 0 <= index < len(counts):
            counts[index] += 1
    return counts


def peaks_per_period(
    every: Iterable[Life], starts: Sequence[datetime], period: int, init_type: str | None = None
) -> list[int]:
    """The most lives alive at once during each period starting at ``starts`` (exact).

    A period's peak is at least what is alive at its start; every init and shutdown inside it
    then moves the count (at a tie a shutdown goes first, as in ``peak``).
    """
    if not starts:
        return []
    chosen = _of_type(every, init_type)
    step = timedelta(seconds=period)
    first = starts[0]
    current = alive_at(chosen, [first])[0]
    peaks = [0] * len(starts)
    peaks[0] = current
    filled = 0
    events = sorted(
        [(life.init, 1) for life in chosen if life.init >= first]
        + [(life.shutdown, -1) for life in chosen if life.shutdown >= first],
    )
    for moment, delta in events:
        index = int((moment - first) / step)
        if index >= len(starts):
            break
        while filled < index:
            filled += 1
            peaks[filled] = current
        current += delta
        peaks[index] = max(peaks[index], current)
    while filled < len(starts) - 1:
        filled += 1
        peaks[filled] = current
    return peaks
