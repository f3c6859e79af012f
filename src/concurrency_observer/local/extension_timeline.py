"""When an environment's extension started, was first invoked and got SHUTDOWN: the RIE's lines.

The harness's clock for the two figures the control plane cannot time exactly from its own side:

- **The first-invoke class** (``FirstInvoke``). The extension times its first INVOKE from its own
  start. The RIE logs the extension registering (``External agent NAME (...) registered``), which
  it does after starting, and ``INVOKE START(requestId: ...)`` before the invoke reaches it. So the
  extension's gap is at least ``invoke_started - registered`` (``lower_gap``): the lower bound of
  the control plane's interval, whose upper bound is the gap from sending the init
  (``fleet.FleetConfig.first_invoke_class``).
- **The peak of live environments.** A record's ``initTime`` is the extension's start and its
  ``shutdownTime`` the SHUTDOWN it read. The extension starts after the RIE's ``INIT START`` and
  before it registers; it reads SHUTDOWN after the RIE logs ``Received signal`` and before the
  environment has exited. ``LiveSpan`` keeps both ends as such intervals, and ``peak_bounds``
  gives the fewest and the most environments alive at once that the records can show.

The RIE stamps its lines in UTC to the millisecond (``telemetry_emulator.rie_time``), on the
machine's wall clock, which the extension reads too; a stamp is truncated, so an instant lies in
``[stamp, stamp + STAMP_RESOLUTION_S)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from concurrency_observer.local.telemetry_emulator import rie_time

STAMP_RESOLUTION_S: Final = 0.001
_INIT_START: Final = "(rapid) INIT START("
_INVOKE_START: Final = "(rapid) INVOKE START("
_SIGNAL: Final = "(rapid) Received signal"
_REGISTERED: Final = " registered, subscribed to "


@dataclass(frozen=True)
class ExtensionTimeline:
    """One environment's first init, as the RIE logged it (epoch seconds; ``None``: not seen)."""

    init_started: float | None = None  # INIT START
    registered: float | None = None  # the extension registered (it had started before)
    invoke_started: float | None = None  # the first INVOKE START (the extension's first INVOKE)
    signalled: float | None = None  # Received signal (SIGTERM): SHUTDOWN follows
    exited: float | None = None  # when the harness saw the environment's processes gone

    @property
    def lower_gap(self) -> float | None:
        """The least time the extension can have measured from its start to its first INVOKE."""
        if self.registered is None or self.invoke_started is None:
            return None
        return max(0.0, self.invoke_started - (self.registered + STAMP_RESOLUTION_S))

    def span(self) -> LiveSpan | None:
        """Both ends of the extension's life as intervals; ``None`` when a line is missing."""
        started, registered = self.init_started, self.registered
        signalled, exited = self.signalled, self.exited
        if started is None or registered is None or signalled is None or exited is None:
            return None
        return LiveSpan(
            started,
            registered + STAMP_RESOLUTION_S,
            signalled,
            max(exited, signalled + STAMP_RESOLUTION_S),
        )


def extension_timeline(output: str, extension: str, exited: float | None) -> ExtensionTimeline:
    """The first INIT START, ``extension``'s registration, the first INVOKE START and the first
    signal in an environment's ``output``; ``exited``: when it was seen gone (epoch s)."""
    found: dict[str, float] = {}
    registered = f" {extension} ("
    for line in output.splitlines():
        if _INIT_START in line:
            key = "init_started"
        elif _REGISTERED in line and registered in line:
            key = "registered"
        elif _INVOKE_START in line:
            key = "invoke_started"
        elif _SIGNAL in line:
            key = "signalled"
        else:
            continue
        stamp = rie_time(line)
        if stamp is not None and key not in found:
            found[key] = stamp
    return ExtensionTimeline(exited=exited, **found)


@dataclass(frozen=True)
class LiveSpan:
    """An extension's life: it started in ``[start_from, start_by]``, got SHUTDOWN in
    ``[shutdown_from, shutdown_by]`` (epoch seconds)."""

    start_from: float
    start_by: float
    shutdown_from: float
    shutdown_by: float


def _peak(intervals: Iterable[tuple[float, float]]) -> int:
    """The most intervals overlapping at once (an end before a start at the same instant)."""
    pairs = list(intervals)
    events = sorted([(start, 1) for start, _ in pairs] + [(end, -1) for _, end in pairs])
    alive = best = 0
    for _, step in events:
        alive += step
        best = max(best, alive)
    return best


def peak_bounds(spans: Iterable[LiveSpan]) -> tuple[int, int]:
    """The fewest and the most environments alive at once the extensions' own instants allow:
    each life taken as short as it can be, then as long."""
    spans = list(spans)
    shortest = _peak((s.start_by, s.shutdown_from) for s in spans if s.start_by < s.shutdown_from)
    longest = _peak((s.start_from, s.shutdown_by) for s in spans)
    return shortest, longest
