"""The live series: environments alive at each period's end, and the most alive at once in it.

Exactly from the records' init and shutdown instants, plus the environments the metric counts
without a record yet; without records, the running sum of inits minus shutdowns (pure).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from concurrency_observer.figures import records as record_figures
from concurrency_observer.figures.records import Life
from concurrency_observer.figures.report_counts import Counts, Grid, as_count, running_sum


@dataclass(frozen=True)
class Live:
    """The live series over the look-back grid: at period ends, and peaks when exact."""

    total: list[int]
    by_type: dict[str, list[int]]
    peaks: list[int] | None = None
    peaks_by_type: dict[str, list[int]] = field(default_factory=dict)


def live_from_metrics(counts: Counts) -> Live:
    """Without records: inits minus shutdowns summed from the look-back start, at period ends."""
    return Live(
        running_sum([i - s for i, s in zip(counts.inits, counts.shutdowns, strict=True)]),
        {
            t: running_sum([i - s for i, s in zip(inits, counts.shutdowns_by_type[t], strict=True)])
            for t, inits in counts.inits_by_type.items()
        },
    )


def _unrecorded(
    lives: Sequence[Life],
    grid: Grid,
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
        running = max(0, running + as_count(i) - ri - (as_count(s) - rs))
        out.append(running)
    return out


def live_from_records(lives: Sequence[Life], counts: Counts, grid: Grid) -> Live:
    """From the records' instants, plus the metric's environments without a record, per period."""
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
    return Live(total, by_type, peaks, peaks_by_type)
