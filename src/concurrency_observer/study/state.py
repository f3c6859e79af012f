"""A study's saved state: every repeat measured so far, written after each, so a run cut short
continues where it stopped (and only with the same sample parameters).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from concurrency_observer.study.errors import StudyError
from concurrency_observer.study.plan import StudyPlan

STATE_FILE: Final = "study-state.json"
STATE_FORMAT: Final = 1


@dataclass(frozen=True)
class RepeatResult:
    """One measurement: ``count`` environments initialized for ``level`` requested."""

    level: int
    repeat: int
    count: int
    started_at: str
    ready_seconds: float
    allocated: int
    settle_seconds: float
    settled: bool
    shut_down: int | None = None  # provisioned shutdowns read after the removal (None: not read)
    invoked: int | None = None  # of those, ever invoked (FirstInvoke prompt or delayed)

    @property
    def ratio(self) -> float:
        """Environments initialized per environment requested."""
        return self.count / self.level


@dataclass
class StudyState:
    """Everything a run has done so far; saved as JSON after every repeat."""

    parameters: dict[str, Any]
    original: int | None = None
    original_known: bool = False
    results: list[RepeatResult] = field(default_factory=list)

    def done(self) -> set[tuple[int, int]]:
        """The (level, repeat) pairs already measured."""
        return {(r.level, r.repeat) for r in self.results}

    def to_json(self) -> dict[str, Any]:
        """The saved form."""
        return {
            "format": STATE_FORMAT,
            "parameters": self.parameters,
            "original": {"known": self.original_known, "provisioned": self.original},
            "results": [asdict(r) for r in self.results],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StudyState:
        """Read the saved form back."""
        original = data["original"]
        return cls(
            parameters=data["parameters"],
            original=original["provisioned"],
            original_known=bool(original["known"]),
            results=[RepeatResult(**r) for r in data["results"]],
        )


class StateStore:
    """The state file of one study in its output directory."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / STATE_FILE

    def load(self, plan: StudyPlan) -> StudyState:
        """The saved state for ``plan`` (fresh if none); ``StudyError`` if it is another study's."""
        if not self.path.exists():
            return StudyState(parameters=plan.sample_parameters())
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("format") != STATE_FORMAT:
                raise ValueError(f"format {data.get('format')!r}")
            state = StudyState.from_json(data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StudyError(f"cannot read the saved study {self.path}: {exc}") from exc
        wanted = json.loads(json.dumps(plan.sample_parameters()))
        if state.parameters != wanted:
            differing = sorted(
                key
                for key in set(wanted) | set(state.parameters)
                if wanted.get(key) != state.parameters.get(key)
            )
            raise StudyError(
                f"{self.path.parent} holds a study with other parameters ({', '.join(differing)} "
                "differ); use another --output directory or the same parameters"
            )
        return state

    def save(self, state: StudyState) -> None:
        """Write atomically: a crash mid-write leaves the previous state intact."""
        temporary = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(state.to_json(), indent=2) + "\n", encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError as exc:
            raise StudyError(f"cannot save the study state to {self.path}: {exc}") from exc


def pending_runs(plan: StudyPlan, state: StudyState) -> list[tuple[int, int]]:
    """The (level, repeat) pairs of ``plan`` that ``state`` has not measured yet, in order."""
    done = state.done()
    return [run for run in plan.runs() if run not in done]
