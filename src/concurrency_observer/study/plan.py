"""What a study measures (levels, repeats, the settle period) and how long it waits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from concurrency_observer.study.errors import StudyError


@dataclass(frozen=True)
class StudyPlan:
    """What to measure (``identity``, ``levels``, ``repeats``, ``settle``) and how long to wait.

    ``identity`` names the target (function, alias, region, namespace...). It, the levels, the
    repeats and the settle period define the sample: a saved state is only continued with the same
    values. The waits (timeouts, poll interval, cool-down) may change between runs.
    """

    identity: dict[str, str]
    levels: tuple[int, ...]
    repeats: int
    settle: float = 180.0
    ready_timeout: float = 1200.0
    settle_timeout: float = 900.0
    poll_interval: float = 15.0
    cooldown: float = 60.0

    def __post_init__(self) -> None:
        if not self.levels:
            raise StudyError("no levels given")
        if any(level < 1 for level in self.levels):
            raise StudyError("every level must be a whole number of at least 1")
        if len(set(self.levels)) != len(self.levels):
            raise StudyError("a level appears twice; use --repeats to measure it more than once")
        if self.repeats < 1:
            raise StudyError("--repeats must be at least 1")
        for name in ("settle", "ready_timeout", "settle_timeout", "poll_interval", "cooldown"):
            if getattr(self, name) < 0:
                raise StudyError(f"{name.replace('_', ' ')} must not be negative")

    def sample_parameters(self) -> dict[str, Any]:
        """The parameters a saved state must match to be continued."""
        return {
            "identity": dict(sorted(self.identity.items())),
            "levels": list(self.levels),
            "repeats": self.repeats,
            "settle": self.settle,
        }

    def runs(self) -> list[tuple[int, int]]:
        """Every (level, repeat number) of the study in the order they run: level by level."""
        return [(level, r) for level in self.levels for r in range(1, self.repeats + 1)]


def parse_levels(text: str) -> tuple[int, ...]:
    """``"10,50,100"`` as levels; ``StudyError`` naming the bad item otherwise."""
    levels: list[int] = []
    for item in (part.strip() for part in text.split(",")):
        if not item.isdigit() or int(item) < 1:
            raise StudyError(f"--levels: {item!r} is not a whole number of at least 1")
        levels.append(int(item))
    return tuple(levels)
