"""What the user asks of the local fleet, and its validation: changes with the CLI's options.

``FleetConfig`` holds every knob of the control plane (``local/fleet.py``'s docstring says what
each does) and refuses impossible values with a one-line ``FleetError``; it also answers the
threshold questions the fleet asks of a first invoke (``first_invoke_class``, ``releasable``,
``either_way``) and how many environments a provisioned level brings up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from concurrency_observer import schema
from concurrency_observer.errors import UserError

WARMUP_PAYLOAD: Final[Mapping[str, object]] = {"sleep_ms": 0, "warmup": True}
HELD_TIMEOUT_S: Final = 900  # Lambda's maximum function timeout


class FleetError(UserError):
    """The fleet's configuration is impossible, or it was used after closing."""


@dataclass(frozen=True)
class FleetConfig:
    """How the control plane behaves; see the module docstring for each knob."""

    max_environments: int = 10
    idle_timeout: float = 5.0
    over_provisioning: float = 1.0
    parallel_starts: int = 2
    shutdown_parallel: int = 4
    shutdown_gap: float = 0.05
    reaper_interval: float = 0.25
    prompt_threshold: float = schema.DEFAULT_PROMPT_THRESHOLD_S
    threshold_margin: float = 0.5
    pc_max_lifetime: float | None = None  # None: provisioned environments are never recycled
    max_concurrency: int = 1  # invocations one environment serves at once (LMI: several)
    init_on_start: bool = False  # the environment initializes when started, not when invoked
    demand_init_type: str = schema.INIT_ON_DEMAND  # the init type of environments for demand

    def __post_init__(self) -> None:
        if self.max_environments < 1:
            raise FleetError("--max-environments must be at least 1")
        if self.idle_timeout <= 0:
            raise FleetError("--idle-timeout must be positive")
        if not 1.0 <= self.over_provisioning <= 10.0:
            raise FleetError("--over-provisioning must be between 1.0 and 10.0")
        if self.parallel_starts < 1 or self.shutdown_parallel < 1:
            raise FleetError("parallel starts and shutdowns must be at least 1")
        if self.shutdown_gap < 0 or self.reaper_interval <= 0:
            raise FleetError("the shutdown gap cannot be negative, the reaper interval must be > 0")
        if not 0 <= self.threshold_margin < self.prompt_threshold:
            raise FleetError("the prompt threshold must be positive and above its margin (>= 0)")
        if self.pc_max_lifetime is not None and self.pc_max_lifetime <= 0:
            raise FleetError("--pc-max-lifetime must be positive")
        if self.max_concurrency < 1:
            raise FleetError("--max-concurrency must be at least 1")

    def first_invoke_class(self, gap: float | None) -> str:
        """The extension's ``FirstInvoke`` class of an environment first invoked ``gap`` s in."""
        if gap is None:
            return schema.FIRST_INVOKE_NEVER
        if gap <= self.prompt_threshold:
            return schema.FIRST_INVOKE_PROMPT
        return schema.FIRST_INVOKE_DELAYED

    def releasable(self, since_init: float, since_ready: float) -> bool:
        """Whether a held environment may get its first invoke now, its class beyond doubt.

        The extension starts its clock between the init's first invoke being sent
        (``since_init`` ago) and the init being held at the gate (``since_ready`` ago). Within
        the threshold minus the margin of the former, it is prompt for sure (the margin covers
        the release reaching the extension); beyond the threshold plus the margin of the latter,
        delayed for sure. In between, routing passes the environment over.
        """
        prompt = since_init <= self.prompt_threshold - self.threshold_margin
        return prompt or since_ready >= self.prompt_threshold + self.threshold_margin

    def either_way(self, lower: float | None, upper: float | None) -> bool:
        """Whether a first invoke known to ``[lower, upper]`` s may be in either class."""
        if lower is None or upper is None:
            return False
        return min(lower, upper) <= self.prompt_threshold < upper

    def provisioned_environments(self, requested: int) -> int:
        """How many environments ``requested`` provisioned concurrency brings up (ceil(P x f))."""
        # round() first: 2 * 1.1 is 2.2000000000000002 in binary, whose ceil would be 3.
        return math.ceil(round(requested * self.over_provisioning, 9))
