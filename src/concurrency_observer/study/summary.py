"""The sample's statistics: one row per level, the environments initialized per requested."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from concurrency_observer.study.state import RepeatResult


@dataclass(frozen=True)
class LevelSummary:
    """The sample's row for one level: requested, and the environments actually initialized."""

    requested: int
    repeats: int
    mean: float
    stdev: float | None
    minimum: int
    maximum: int
    shut_down_mean: float | None = None  # over the repeats whose usage was read
    invoked_mean: float | None = None  # environments ever invoked, mean over those repeats

    @property
    def ratio(self) -> float:
        """Mean environments initialized per environment requested."""
        return self.mean / self.requested


def summarize(results: Sequence[RepeatResult]) -> list[LevelSummary]:
    """One row per level, sorted by level; ``stdev`` is the sample stdev (None below 2 repeats)."""
    by_level: dict[int, list[RepeatResult]] = {}
    for result in results:
        by_level.setdefault(result.level, []).append(result)
    summaries = []
    for level, repeats in sorted(by_level.items()):
        counts = [r.count for r in repeats]
        read = [r for r in repeats if r.shut_down is not None and r.invoked is not None]
        summaries.append(
            LevelSummary(
                requested=level,
                repeats=len(counts),
                mean=statistics.fmean(counts),
                stdev=statistics.stdev(counts) if len(counts) > 1 else None,
                minimum=min(counts),
                maximum=max(counts),
                shut_down_mean=statistics.fmean(r.shut_down or 0 for r in read) if read else None,
                invoked_mean=statistics.fmean(r.invoked or 0 for r in read) if read else None,
            )
        )
    return summaries
