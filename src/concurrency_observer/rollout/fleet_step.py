"""One function's planned change, as data: what attaching or detaching would do, and why.

Planning (attach_all, detach) is pure: a function's configuration in, a ``Step`` out. The
executor (fleet_update) applies the steps that change something, paced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from concurrency_observer.rollout.fleet_functions import FleetFunction

Action = Literal["attach", "upgrade", "detach", "unchanged", "skip"]
CHANGES: Final[frozenset[Action]] = frozenset({"attach", "upgrade", "detach"})


@dataclass(frozen=True)
class Step:
    """The plan for one function. ``reason`` says what changes, or why nothing does."""

    function: FleetFunction
    action: Action
    reason: str
    layers: tuple[str, ...] = ()  # the layers after the change (for a change)
    variables: Mapping[str, str] = field(default_factory=dict)  # the variables after

    @property
    def changes(self) -> bool:
        """Whether applying this step calls UpdateFunctionConfiguration."""
        return self.action in CHANGES

    def update_arguments(self) -> dict[str, Any]:
        """Keyword arguments for ``update_function_configuration``: layers and variables at once.

        With the RevisionId read, Lambda refuses the update if the function changed since, so a
        concurrent edit is never silently overwritten (the executor reads again and re-plans).
        """
        arguments: dict[str, Any] = {"FunctionName": self.function.arn, "Layers": list(self.layers)}
        # Variables go only when they change: never re-send what was read, so a function whose
        # variables Lambda could not decrypt for us never gets them overwritten.
        if dict(self.variables) != dict(self.function.variables):
            arguments["Environment"] = {"Variables": dict(self.variables)}
        if self.function.revision_id:
            arguments["RevisionId"] = self.function.revision_id
        return arguments
