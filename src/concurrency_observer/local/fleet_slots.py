"""The fleet's bookkeeping about each environment: why it exists, where it is in its life.

``FleetEnvironment`` is what the control plane needs of an environment (``LambdaEnvironment``
has it all; the unit tests use fakes); a ``Slot`` is one environment and what the fleet knows
about it. They change with the fleet's routing and life cycle (``local/fleet.py``), not with
what a run reports (``local/fleet_snapshot.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol


class FleetEnvironment(Protocol):
    """What the fleet needs of an environment (``LambdaEnvironment`` has it all)."""

    name: str

    def start(self) -> object:
        """Start it, ready for invocations (init happens on the first)."""
        ...

    def hold_init(self, payload: object = None) -> None:
        """Initialize it with a first invoke (``payload``) held before any extension sees it."""
        ...

    def release_init(self) -> Any:
        """Let the held first invoke through (the extension's first INVOKE); its answer."""
        ...

    def invoke(self, payload: object = None) -> Any:
        """One invocation; raises ``UserError`` (``EnvironmentFailed``) when it cannot."""
        ...

    def shutdown(self) -> Any:
        """SIGTERM: extensions get SHUTDOWN; returns once it has exited (killed if it hangs)."""
        ...

    def kill(self) -> None:
        """SIGKILL, no SHUTDOWN: for an environment that failed."""
        ...


EnvironmentFactory = Callable[[str, str], FleetEnvironment]
"""``factory(name, init_type)``: a new, not yet started environment of that init type."""


class Origin(Enum):
    """Why the control plane initialized an environment; the value prefixes its name."""

    DEMAND = "od"  # an invocation found no idle environment: a cold start
    PROACTIVE = "od-ahead"  # on-demand, ahead of demand (initialize_ahead)
    PROVISIONED = "pc"  # provision(): provisioned concurrency
    REPLACEMENT = "pc-replacement"  # provisioned, replacing one past pc_max_lifetime


class SlotState(Enum):
    """Where an environment is in its life, as the control plane sees it."""

    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(eq=False)
class Slot:
    """One environment and the control plane's bookkeeping about it."""

    environment: FleetEnvironment
    init_type: str
    origin: Origin = Origin.DEMAND
    state: SlotState = SlotState.STARTING
    initialized: bool = False  # its first invoke (the init) was sent
    warm: bool = False  # initialized and ready: its first invoke answered, or held at the gate
    held: bool = False  # its first invoke is held: no INVOKE has reached the extension yet
    init_at: float | None = None
    ready_at: float | None = None  # a held init: when it was known to wait at the gate
    first_invoke_gap: float | None = None  # init to the extension's first INVOKE, as known here
    last_active: float = 0.0
    invocations: int = 0
    in_flight: int = 0  # routed here, not answered: BUSY while any, full at max_concurrency
    replacing: bool = False  # a replacement is being initialized for it (recycling)
    retiring: bool = False  # replaced: no more invocations, shut down once idle
