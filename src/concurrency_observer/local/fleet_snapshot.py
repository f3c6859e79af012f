"""What a fleet run reports: each invocation's outcome and the control plane's ground truth.

``FleetSnapshot`` is the truth ``simulate`` compares the report with; its ``to_dict`` is the
``truth`` of simulate's JSON, so it changes with ``reporting/simulation_output.py`` and the
verdict (``local/simulation.py``), not with how the fleet routes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from concurrency_observer import schema
from concurrency_observer.local.extension_timeline import LiveSpan


class Outcome(Enum):
    """What happened to one invocation."""

    SERVED = "served"
    THROTTLED = "throttled"
    FAILED = "failed"


@dataclass(frozen=True)
class InvocationOutcome:
    """One invocation as the load generator sees it: served (cold or warm), throttled or failed."""

    outcome: Outcome
    init_type: str | None = None
    cold: bool = False
    latency_s: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class FleetSnapshot:
    """The control plane's ground truth at one moment."""

    started: Mapping[str, int]
    stopped: Mapping[str, int]
    invocations: Mapping[str, int]
    live: Mapping[str, int]
    starting: int
    busy: int
    warmups: int
    served: int
    throttled: int
    failed: int
    idle_shutdowns: int
    forced_shutdowns: int
    peak_live: int
    errors: tuple[str, ...] = ()
    # Environments shut down, by (init type, FirstInvoke class): what the extension emits.
    first_invoke: Mapping[tuple[str, str], int] = field(default_factory=dict)
    proactive: int = 0  # on-demand environments initialized ahead of demand
    replacements: int = 0  # provisioned environments initialized to replace a recycled one
    recycled: int = 0  # provisioned environments shut down after pc_max_lifetime
    held: int = 0  # live now, initialized and not invoked yet
    # Environments shut down whose first invoke's interval straddles the threshold, by init
    # type: counted in the upper bound's class (delayed), either class is right.
    either_way: Mapping[str, int] = field(default_factory=dict)
    peak_per_environment: int = 0  # most invocations one environment served at once
    # Each stopped environment's extension life by the RIE's lines (see ``LiveSpan``), and how
    # many stopped environments had no such lines (then the peak is not compared).
    spans: tuple[LiveSpan, ...] = ()
    spans_missing: int = 0

    @property
    def near_threshold(self) -> int:
        """Environments whose class either side of the threshold is right."""
        return sum(self.either_way.values())

    @property
    def started_total(self) -> int:
        """Environments initialized, all types."""
        return sum(self.started.values())

    @property
    def stopped_total(self) -> int:
        """Environments shut down with SIGTERM (the extension got SHUTDOWN), all types."""
        return sum(self.stopped.values())

    @property
    def invocations_total(self) -> int:
        """Invocations environments received, warm-ups included (what the extension counts)."""
        return sum(self.invocations.values())

    @property
    def live_total(self) -> int:
        """Environments initialized and not stopped now."""
        return sum(self.live.values())

    def first_invoke_count(self, init_type: str | None, usage: str) -> int:
        """Environments shut down in FirstInvoke class ``usage`` (of one init type, or all)."""
        return sum(
            n for (t, c), n in self.first_invoke.items() if c == usage and init_type in (None, t)
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: every count, by init type where it has one."""
        by_type: dict[str, dict[str, int]] = {}
        for (init_type, usage), count in sorted(self.first_invoke.items()):
            by_type.setdefault(init_type, dict.fromkeys(schema.FIRST_INVOKE_CLASSES, 0))
            by_type[init_type][usage] = count
        return {
            "first_invoke": {
                "total": {c: self.first_invoke_count(None, c) for c in schema.FIRST_INVOKE_CLASSES},
                "by_init_type": by_type,
            },
            "proactive_inits": self.proactive,
            "provisioned_replacements": self.replacements,
            "provisioned_recycled": self.recycled,
            "near_threshold": self.near_threshold,
            "either_way_by_init_type": _d(self.either_way),
            "environments_started": {"total": self.started_total, "by_init_type": _d(self.started)},
            "environments_stopped": {"total": self.stopped_total, "by_init_type": _d(self.stopped)},
            "invocations": {
                "total": self.invocations_total,
                "by_init_type": _d(self.invocations),
                "warmups": self.warmups,
                "served_from_load": self.served,
            },
            "throttled": self.throttled,
            "failed": self.failed,
            "idle_shutdowns": self.idle_shutdowns,
            "forced_shutdowns": self.forced_shutdowns,
            "peak_live": self.peak_live,
            "peak_per_environment": self.peak_per_environment,
            "errors": list(self.errors),
        }


def _d(counts: Mapping[str, int]) -> dict[str, int]:
    return {k: counts[k] for k in sorted(counts)}
