"""A small local control plane over real Lambda environments: routing, scale-out, idle, shutdown.

``Fleet`` does for environments on this machine what Lambda's control plane does for a function:

- **Routing.** ``invoke(payload)`` sends one invocation to an idle environment: a provisioned one
  first (Lambda spills over to on-demand only when provisioned concurrency is busy: P invocations
  at once, even when more than P environments were initialized for it), one already invoked
  before one still held, else the on-demand one used most recently, so the others stay idle and
  can be reclaimed.
- **Scale-out.** When every environment is busy, a new on-demand environment is started for the
  invocation (its first invoke is its init: a cold start). At ``max_environments`` (provisioned
  ones included, as Lambda counts them against the concurrency limit) the invocation is
  **throttled** at once, like Lambda's 429, and counted as such.
- **Several invocations per environment** (``FleetConfig.max_concurrency`` > 1: Lambda Managed
  Instances). An environment takes invocations until it serves ``max_concurrency`` at once (it is
  idle, and can be reclaimed, only with none in flight); invocations are packed onto the one
  already serving the most, so the others go idle, including one still starting for demand (the
  invocation waits for its start, as Lambda's router queues on an environment being brought up).
  Only when every environment is full is a new one started. With ``init_on_start`` an
  environment initializes when it is started (the RIE's LMI mode does), so its init is counted
  then, not at its first invoke; new ones get ``FleetConfig.demand_init_type``
  (``lambda-managed-instances``).
- **Idle timeout.** A reaper thread shuts down on-demand environments idle for ``idle_timeout``.
  Provisioned environments stay until they are removed (``provision(0)``) or the fleet closes.
- **Provisioned concurrency.** ``provision(P)`` brings up ``ceil(P * over_provisioning)``
  environments with ``AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency``. The RIE has no
  eager-init option (it initializes on the first invoke; its flags are the two addresses,
  ``--log-level`` and ``--enable-init-caching``), so each is brought up by a **held warm-up
  invoke** (``{"sleep_ms": 0, "warmup": true}``, see ``hold_init``): the environment is
  initialized, its extension has recorded the init, and no INVOKE reaches it until the first
  invocation is routed there, which releases the warm-up just before it. The released warm-up is
  an INVOKE the extension counts, so the ground truth counts it too. The factor (default 1.0) is
  the knob that makes the local study over-provision on purpose.
- **Proactive init.** ``initialize_ahead()`` initializes an on-demand environment ahead of demand
  (held the same way); the simulation calls it on a seeded schedule. Some are routed to later,
  some reach the idle timeout without a single invocation: never invoked.
- **Recycling.** With ``pc_max_lifetime``, a provisioned environment that old is replaced: a new
  one is initialized (held), then the old one is shut down once idle. Lambda recycles PC
  environments like this, and bills each replacement's init.
- **How each environment was used** (the extension's ``FirstInvoke``): never invoked; first
  invoke within ``prompt_threshold`` of its init (prompt); later (delayed). The fleet knows an
  interval for the gap the extension measures. Its upper bound is from the control plane's clock:
  from sending the init to when the function says it was first invoked (``invoked_monotonic`` of
  the answer, the released warm-up's for a held init; the answer's arrival otherwise). Its lower
  bound is from the RIE's lines, read at the shutdown: from the extension registering to the
  first ``INVOKE START`` (``extension_timeline``). The truth's class is the upper bound's; where
  the interval straddles the threshold either class is right, and the environment is counted in
  ``FleetSnapshot.either_way``. So that few do, a held environment is released only when its
  class is beyond doubt (``FleetConfig.releasable``, ``threshold_margin``): routing passes it
  over meanwhile.
- **Live spans.** At each shutdown the fleet also keeps when the extension started and got
  SHUTDOWN, by the RIE's lines (``extension_timeline.LiveSpan``): the records' instants, on the
  harness's clock, for the peak of live environments.
- **Shutdowns** (idle, removal, close) go through a ``ShutdownStagger``: a few at a time and a gap
  between two SIGTERMs, so each environment meets the RIE's 2 s SHUTDOWN deadline (fifty
  SIGTERMed at the same instant overrun it on 2 cores).
- **Bounded starts.** At most ``parallel_starts`` environments start at once (each costs ~45 MB
  and ~130 ms CPU); a warm-up init is inside that bound too.
- **Ground truth.** ``snapshot()`` says what happened: environments started and stopped by init
  type, invocations sent (warm-ups included), throttled, idle shutdowns, errors, peak live.

``close()`` shuts everything down (staggered) and waits; it is safe to call twice, from a
``finally`` on error or Ctrl-C. Environments are made by an injected factory, so the unit tests
run this logic on fakes; ``lambda_environment_factory`` makes real ones.

Thread-safe: one lock guards the slots and the counts; no environment call is made under it.

Beside it: ``fleet_config.py`` (the knobs and their validation), ``fleet_slots.py`` (each
environment's bookkeeping), ``fleet_snapshot.py`` (the ground truth a run reports) and
``shutdown_stagger.py``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from concurrency_observer import schema
from concurrency_observer.errors import UserError
from concurrency_observer.local.extension_timeline import ExtensionTimeline, LiveSpan
from concurrency_observer.local.fleet_config import (
    HELD_TIMEOUT_S,
    WARMUP_PAYLOAD,
    FleetConfig,
    FleetError,
)
from concurrency_observer.local.fleet_slots import (
    EnvironmentFactory,
    FleetEnvironment,
    Origin,
    Slot,
    SlotState,
)
from concurrency_observer.local.fleet_snapshot import FleetSnapshot, InvocationOutcome, Outcome
from concurrency_observer.local.shutdown_stagger import ShutdownStagger

# Re-exported: callers import the fleet's names from here, as before the split.
__all__ = [
    "HELD_TIMEOUT_S",
    "WARMUP_PAYLOAD",
    "EnvironmentFactory",
    "Fleet",
    "FleetConfig",
    "FleetEnvironment",
    "FleetError",
    "FleetSnapshot",
    "InvocationOutcome",
    "Origin",
    "Outcome",
    "ShutdownStagger",
    "Slot",
    "SlotState",
    "lambda_environment_factory",
]


class Fleet:
    """The control plane; see the module docstring. Use as a context manager, or ``close()``."""

    def __init__(
        self,
        factory: EnvironmentFactory,
        config: FleetConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        reaper: bool = True,
    ) -> None:
        """``reaper=False`` leaves idle shutdowns to explicit ``reap_idle()`` calls (tests)."""
        self.config = config or FleetConfig()
        self._factory = factory
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._slots: list[Slot] = []
        self._start_slots = threading.BoundedSemaphore(self.config.parallel_starts)
        self._stagger = ShutdownStagger(self.config.shutdown_parallel, self.config.shutdown_gap)
        self._counts: Counter[str] = Counter()
        self._started: Counter[str] = Counter()
        self._stopped: Counter[str] = Counter()
        self._invocations: Counter[str] = Counter()
        self._first_invoke: Counter[tuple[str, str]] = Counter()
        self._either_way: Counter[str] = Counter()
        self._spans: list[LiveSpan] = []
        self._errors: list[str] = []
        self._peak_live = 0
        self._peak_per_environment = 0
        self._provisioned_target = 0
        self._names = 0
        self._closing = False
        self._closed = False
        self._stop_reaper = threading.Event()
        self._threads: list[threading.Thread] = []
        if reaper:
            self._threads.append(
                threading.Thread(target=self._reap_loop, name="fleet-reaper", daemon=True)
            )
            if self.config.pc_max_lifetime is not None:
                self._threads.append(
                    threading.Thread(target=self._recycle_loop, name="fleet-recycler", daemon=True)
                )
        for thread in self._threads:
            thread.start()

    # -- invocations -------------------------------------------------------------------------

    def invoke(self, payload: object = None) -> InvocationOutcome:
        """Route one invocation (blocking until it is answered); throttled at the maximum."""
        with self._lock:
            if self._closing:
                self._counts["failed"] += 1
                return InvocationOutcome(Outcome.FAILED, error="the fleet is shutting down")
            slot = self._idle_slot()
            cold = slot is None
            if slot is None:
                if self._active_count() >= self.config.max_environments:
                    self._counts["throttled"] += 1
                    return InvocationOutcome(Outcome.THROTTLED)
                slot = self._new_slot(self.config.demand_init_type)
            joining = not cold and slot.state is SlotState.STARTING
            self._take_seat(slot)
        if cold and not self._start(slot):
            return InvocationOutcome(Outcome.FAILED, slot.init_type, cold, error="no environment")
        if joining and not self._wait_started(slot):
            return InvocationOutcome(Outcome.FAILED, slot.init_type, error="its environment failed")
        if slot.held and not self._release(slot):
            return InvocationOutcome(Outcome.FAILED, slot.init_type, cold, error="release failed")
        return self._invoke_on(slot, payload, cold=cold)

    def _take_seat(self, slot: Slot) -> None:
        """One more invocation on ``slot`` (call under the lock): busy while it serves any."""
        slot.in_flight += 1
        self._peak_per_environment = max(self._peak_per_environment, slot.in_flight)
        if slot.state is SlotState.IDLE:
            slot.state = SlotState.BUSY

    def _wait_started(self, slot: Slot) -> bool:
        """Wait for the start of the environment this invocation joined; False if it failed."""
        with self._changed:
            while slot.state is SlotState.STARTING:
                self._changed.wait(timeout=1.0)
            if slot.state in (SlotState.IDLE, SlotState.BUSY):
                return True
            self._counts["failed"] += 1
            slot.in_flight -= 1
            return False

    def _idle_slot(self) -> Slot | None:
        now = self._clock()
        # Provisioned concurrency P serves at most P invocations at once, however many
        # environments were initialized for it: beyond, Lambda spills over to on-demand.
        busy_provisioned = sum(
            1
            for s in self._slots
            if s.state is SlotState.BUSY and s.init_type == schema.INIT_PROVISIONED
        )
        provisioned_full = busy_provisioned >= self._provisioned_target
        idle = [
            s
            for s in self._slots
            if self._has_room(s)
            and not s.retiring
            and not (provisioned_full and s.init_type == schema.INIT_PROVISIONED)
            # Too close to the threshold to say which side the extension will see: not yet.
            and not (s.held and not self._releasable(s, now))
        ]
        if not idle:
            return None
        # Provisioned first (Lambda spills over to on-demand only when they are busy), then those
        # already invoked, then started ones before one still starting, then the one serving the
        # most (several per environment: pack them), then the most recently used: the rest stay
        # idle and get reclaimed.
        return max(
            idle,
            key=lambda s: (
                s.init_type == schema.INIT_PROVISIONED,
                not s.held,
                s.state is not SlotState.STARTING,
                s.in_flight,
                s.last_active,
            ),
        )

    def _has_room(self, slot: Slot) -> bool:
        """Whether ``slot`` can take one more invocation now (call under the lock).

        An idle environment can; with several invocations per environment, also a busy one below
        ``max_concurrency`` (then it stays BUSY while any is in flight) and one still starting
        for demand (its invocations wait for the start).
        """
        if slot.state is SlotState.IDLE:
            return True
        several = self.config.max_concurrency > 1
        serving = slot.state is SlotState.BUSY or (
            slot.state is SlotState.STARTING and slot.origin is Origin.DEMAND
        )
        return several and serving and slot.in_flight < self.config.max_concurrency

    def _releasable(self, slot: Slot, now: float) -> bool:
        init_at = slot.init_at if slot.init_at is not None else now
        ready_at = slot.ready_at if slot.ready_at is not None else now
        return self.config.releasable(now - init_at, now - ready_at)

    def _release(self, slot: Slot) -> bool:
        """Let a held init's warm-up through, just before the invocation routed there."""
        try:
            answer = slot.environment.release_init()
        except UserError as exc:
            self._retire_failed(slot, f"{slot.environment.name}: release: {exc}")
            return False
        with self._changed:
            # The upper bound, as for a cold start: when the function got the warm-up (the gate
            # opens some time after the release is sent, more on a busy machine), else now.
            invoked_at = getattr(answer, "invoked_monotonic", None)
            at = invoked_at if isinstance(invoked_at, float) else self._clock()
            slot.held = False
            slot.first_invoke_gap = at - (slot.init_at if slot.init_at is not None else at)
            slot.invocations += 1
            self._invocations[slot.init_type] += 1
            self._counts["warmups"] += 1
        return True

    def _active_count(self) -> int:
        active = (SlotState.STARTING, SlotState.IDLE, SlotState.BUSY)
        return sum(1 for s in self._slots if s.state in active)

    def _new_slot(self, init_type: str, origin: Origin = Origin.DEMAND) -> Slot:
        self._names += 1
        environment = self._factory(f"{origin.value}{self._names}", init_type)
        slot = Slot(environment, init_type, origin, last_active=self._clock())
        self._slots.append(slot)
        return slot

    def _start(self, slot: Slot, *, held: bool = False) -> bool:
        """Start the slot's environment within the start bound; False (slot retired) if not.

        With ``held`` it is also initialized here, inside the bound, its first invoke held
        (``hold_init``): then it is idle, ready and not invoked.
        """
        with self._start_slots:
            try:
                slot.environment.start()
            except UserError as exc:
                self._retire_failed(slot, f"{slot.environment.name} did not start: {exc}")
                return False
            with self._changed:
                abandon = self._closing
                if self.config.init_on_start:  # it initialized as it started
                    self._mark_initialized(slot)
                    slot.warm = True
                if abandon:
                    initialized = slot.initialized
                    slot.state = SlotState.STOPPING if initialized else SlotState.STOPPED
                    self._changed.notify_all()
                elif not held:
                    slot.state = SlotState.BUSY
                    self._changed.notify_all()  # invocations that joined it wait for this
                else:
                    self._mark_initialized(slot)
            if abandon:
                if initialized:  # its extension recorded an init: it gets its SHUTDOWN
                    self._stop(slot, reason="close")
                else:  # never invoked, so never initialized: nothing to SHUTDOWN
                    slot.environment.kill()
                return False
            if held:
                # Initialized on start: nothing to hold, no first invoke to let through later.
                holds = not self.config.init_on_start
                try:
                    if holds:
                        slot.environment.hold_init(WARMUP_PAYLOAD)
                except UserError as exc:
                    message = f"{slot.environment.name}: held init: {exc}"
                    self._retire_failed(slot, message, invocation=False)
                    return False
                with self._changed:
                    slot.held = holds
                    slot.warm = True
                    slot.ready_at = slot.last_active = self._clock()
                    if slot.state is SlotState.STARTING:
                        slot.state = SlotState.IDLE
                    self._changed.notify_all()
        return True

    def _mark_initialized(self, slot: Slot) -> None:
        """Count the init when its first invoke is sent (call under the lock).

        Counted when sent: the first invoke starts the init, and a SIGTERM arriving before its
        answer (Ctrl-C) still finds an environment whose extension records both.
        """
        if not slot.initialized:
            slot.initialized = True
            slot.init_at = self._clock()
            self._started[slot.init_type] += 1
            self._peak_live = max(self._peak_live, self._live_count())

    def _invoke_on(self, slot: Slot, payload: object, *, cold: bool) -> InvocationOutcome:
        with self._changed:
            self._mark_initialized(slot)
        began = self._clock()
        try:
            answer = slot.environment.invoke(payload)
        except UserError as exc:
            self._retire_failed(slot, f"{slot.environment.name}: {exc}")
            return InvocationOutcome(Outcome.FAILED, slot.init_type, cold, error=str(exc))
        latency = self._clock() - began
        stop_now = False
        with self._changed:
            if slot.first_invoke_gap is None:  # a cold start
                # When the function was invoked (on the same monotonic clock) bounds when the
                # extension got its INVOKE; else the answer does, the invocation's work included.
                invoked_at = getattr(answer, "invoked_monotonic", None)
                at = invoked_at if isinstance(invoked_at, float) else self._clock()
                slot.first_invoke_gap = at - (slot.init_at if slot.init_at is not None else began)
            slot.warm = True
            slot.invocations += 1
            slot.in_flight -= 1
            self._invocations[slot.init_type] += 1
            self._counts["served"] += 1
            slot.last_active = self._clock()
            if slot.state in (SlotState.STOPPING, SlotState.STOPPED):
                pass  # close() took it while it was answering
            elif slot.in_flight > 0:
                pass  # still serving others (several invocations per environment)
            elif self._closing:
                stop_now = True
                slot.state = SlotState.STOPPING
            else:
                slot.state = SlotState.IDLE
            self._changed.notify_all()
        if stop_now:
            self._stop(slot, reason="close")
        return InvocationOutcome(Outcome.SERVED, slot.init_type, cold, latency)

    def _live_count(self) -> int:
        return sum(1 for s in self._slots if s.initialized and s.state is not SlotState.STOPPED)

    def _retire_failed(self, slot: Slot, message: str, *, invocation: bool = True) -> None:
        """Record the failure; kill the environment unless close() is already stopping it."""
        with self._changed:
            if invocation:
                self._counts["failed"] += 1
            self._errors.append(message)
            being_stopped = slot.state is SlotState.STOPPING and invocation
            if not being_stopped:
                slot.state = SlotState.STOPPED
            self._changed.notify_all()
        if not being_stopped:
            slot.environment.kill()

    # -- provisioned concurrency -------------------------------------------------------------

    def provision(self, requested: int) -> int:
        """Bring the provisioned environments to ``ceil(requested x factor)``; blocks until done.

        Raising adds environments (initialized with a held warm-up, within the start bound);
        lowering shuts idle provisioned ones down (staggered). Returns how many are up.
        """
        target = self.config.provisioned_environments(requested) if requested > 0 else 0
        with self._changed:
            if self._closing:
                raise FleetError("the fleet is closed")
            current = [s for s in self._slots if self._is_active_provisioned(s)]
            on_demand = self._active_count() - len(current)
            if target > len(current) and target + on_demand > self.config.max_environments:
                raise FleetError(
                    f"{target} provisioned environments (requested {requested} x "
                    f"{self.config.over_provisioning:g}) do not fit in --max-environments "
                    f"{self.config.max_environments}"
                )
            self._provisioned_target = requested
            new = [
                self._new_slot(schema.INIT_PROVISIONED, Origin.PROVISIONED)
                for _ in range(target - len(current))
            ]
            extra = current[target:] if target < len(current) else []
        if new:
            with ThreadPoolExecutor(self.config.parallel_starts, "fleet-provision") as starter:
                list(starter.map(lambda s: self._start(s, held=True), new))
        for slot in extra:
            self._stop_when_idle(slot)
        self._stagger.wait()
        with self._lock:
            return sum(1 for s in self._slots if self._is_active_provisioned(s))

    @staticmethod
    def _is_active_provisioned(slot: Slot) -> bool:
        active = (SlotState.STARTING, SlotState.IDLE, SlotState.BUSY)
        return (
            slot.init_type == schema.INIT_PROVISIONED and slot.state in active and not slot.retiring
        )

    # -- proactive init and recycling --------------------------------------------------------

    def initialize_ahead(self) -> bool:
        """Initialize one on-demand environment ahead of demand (held); blocks until it is.

        False when it would exceed ``max_environments`` or the fleet is closing: Lambda does not
        initialize ahead beyond the concurrency limit either.
        """
        with self._changed:
            if self._closing or self._active_count() >= self.config.max_environments:
                return False
            slot = self._new_slot(self.config.demand_init_type, Origin.PROACTIVE)
            self._counts["proactive"] += 1
        return self._start(slot, held=True)

    def recycle_provisioned(self) -> int:
        """Replace provisioned environments older than ``pc_max_lifetime``; blocks until done.

        Make before break, as Lambda keeps the provisioned concurrency while it recycles: the
        replacement is initialized (held) first, then the old one is shut down once idle and
        gets no more invocations. Returns how many were replaced.
        """
        lifetime = self.config.pc_max_lifetime
        if lifetime is None:
            return 0
        now = self._clock()
        with self._changed:
            if self._closing:
                return 0
            due = [
                s
                for s in self._slots
                if self._is_active_provisioned(s)
                and s.state is not SlotState.STARTING
                and not s.replacing
                and s.init_at is not None
                and now - s.init_at >= lifetime
            ]
            room = self.config.max_environments - self._active_count()
            due = due[: max(room, 0)]
            pairs = []
            for old in due:
                old.replacing = True
                pairs.append((old, self._new_slot(schema.INIT_PROVISIONED, Origin.REPLACEMENT)))
        replaced = 0
        for old, new in pairs:
            if not self._start(new, held=True):
                with self._changed:
                    old.replacing = False  # try again on the next round
                continue
            with self._changed:
                old.retiring = True
                self._counts["replacements"] += 1
                self._counts["recycled"] += 1
            self._stop_when_idle(old, reason="recycled")
            replaced += 1
        return replaced

    def _recycle_loop(self) -> None:
        while not self._stop_reaper.wait(self.config.reaper_interval):
            self.recycle_provisioned()

    def provisioned_ready(self) -> int:
        """Provisioned environments initialized and not stopping (what READY waits for)."""
        with self._lock:
            return sum(1 for s in self._slots if self._is_active_provisioned(s) and s.warm)

    def _stop_when_idle(self, slot: Slot, reason: str = "removed") -> None:
        with self._changed:
            while slot.state in (SlotState.STARTING, SlotState.BUSY):
                if self._closing:
                    return  # close() stops every environment, this one too
                self._changed.wait(timeout=1.0)
            if slot.state is not SlotState.IDLE:
                return
            slot.state = SlotState.STOPPING
        self._stop(slot, reason=reason)

    # -- idle timeout and shutdowns ----------------------------------------------------------

    def reap_idle(self) -> int:
        """Shut down (staggered, in the background) on-demand environments idle too long.

        A held one (initialized ahead of demand, never invoked) is idle since its init.
        """
        now = self._clock()
        with self._lock:
            expired = [
                s
                for s in self._slots
                if s.state is SlotState.IDLE
                and s.init_type != schema.INIT_PROVISIONED
                and now - s.last_active >= self.config.idle_timeout
            ]
            for slot in expired:
                slot.state = SlotState.STOPPING
                self._counts["idle_shutdowns"] += 1
        for slot in expired:
            self._stop(slot, reason="idle")
        return len(expired)

    def wait_for_shutdowns(self) -> None:
        """Block until every shutdown started so far (idle ones run in the background) is done."""
        self._stagger.wait()

    def _reap_loop(self) -> None:
        interval = min(self.config.reaper_interval, self.config.idle_timeout / 4)
        while not self._stop_reaper.wait(interval):
            self.reap_idle()

    def _stop(self, slot: Slot, *, reason: str) -> None:
        def stop() -> None:
            try:
                result = slot.environment.shutdown()
            except UserError as exc:
                message = f"{slot.environment.name} ({reason}) did not shut down: {exc}"
                self._retire_failed(slot, message, invocation=False)
                return
            timeline = _timeline_of(slot.environment)
            with self._changed:
                counted = slot.state is SlotState.STOPPED  # it failed meanwhile: counted there
                slot.state = SlotState.STOPPED
                if slot.initialized and not counted:
                    self._stopped[slot.init_type] += 1
                    upper = slot.first_invoke_gap
                    usage = self.config.first_invoke_class(upper)
                    self._first_invoke[(slot.init_type, usage)] += 1
                    lower = timeline.lower_gap if timeline is not None else None
                    if self.config.either_way(lower, upper):
                        self._either_way[slot.init_type] += 1
                    span = timeline.span() if timeline is not None else None
                    if span is not None:
                        self._spans.append(span)
                    else:
                        self._counts["spans_missing"] += 1
                if getattr(result, "forced", False):
                    self._counts["forced_shutdowns"] += 1
                self._changed.notify_all()

        try:
            self._stagger.submit(stop)
        except RuntimeError:  # close() already stopped the stagger's threads: stop it here
            stop()

    def close(self, inflight_timeout: float = 10.0) -> None:
        """Stop taking invocations, then shut every environment down (staggered) and wait.

        Waits up to ``inflight_timeout`` for invocations and starts in flight; whatever is still
        running after that is shut down anyway (its invocation fails). Safe to call again.
        """
        with self._changed:
            if self._closed:
                return
            self._closing = True
        self._stop_reaper.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()
        # Real time, not the injected clock: this is a wait, not idle accounting.
        deadline = time.monotonic() + inflight_timeout
        with self._changed:
            while any(s.state in (SlotState.STARTING, SlotState.BUSY) for s in self._slots):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(timeout=min(remaining, 0.5))
            remaining_slots = [
                s for s in self._slots if s.state in (SlotState.IDLE, SlotState.BUSY)
            ]
            hung = [s for s in self._slots if s.state is SlotState.STARTING]
            for slot in remaining_slots:
                slot.state = SlotState.STOPPING
        for slot in remaining_slots:
            self._stop(slot, reason="close")
        for slot in hung:  # never initialized: no SHUTDOWN to deliver
            slot.environment.kill()
        self._stagger.close()
        with self._changed:
            self._closed = True

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- what can be observed ----------------------------------------------------------------

    def snapshot(self) -> FleetSnapshot:
        """The ground truth now (consistent: taken under the lock)."""
        with self._lock:
            live: Counter[str] = Counter()
            for slot in self._slots:
                if slot.initialized and slot.state is not SlotState.STOPPED:
                    live[slot.init_type] += 1
            return FleetSnapshot(
                started=dict(self._started),
                stopped=dict(self._stopped),
                invocations=dict(self._invocations),
                live=dict(live),
                starting=sum(1 for s in self._slots if s.state is SlotState.STARTING),
                busy=sum(1 for s in self._slots if s.state is SlotState.BUSY),
                warmups=self._counts["warmups"],
                served=self._counts["served"],
                throttled=self._counts["throttled"],
                failed=self._counts["failed"],
                idle_shutdowns=self._counts["idle_shutdowns"],
                forced_shutdowns=self._counts["forced_shutdowns"],
                peak_live=self._peak_live,
                errors=tuple(self._errors),
                first_invoke=dict(self._first_invoke),
                proactive=self._counts["proactive"],
                replacements=self._counts["replacements"],
                recycled=self._counts["recycled"],
                held=sum(1 for s in self._slots if s.held and s.state is SlotState.IDLE),
                either_way=dict(self._either_way),
                peak_per_environment=self._peak_per_environment,
                spans=tuple(self._spans),
                spans_missing=self._counts["spans_missing"],
            )

    def environments(self) -> list[FleetEnvironment]:
        """Every environment the fleet ever made, in order (their outputs hold the EMF lines)."""
        with self._lock:
            return [slot.environment for slot in self._slots]


def _timeline_of(environment: FleetEnvironment) -> ExtensionTimeline | None:
    """The environment's ``timeline()`` (real environments have one), else ``None``."""
    timeline = getattr(environment, "timeline", None)
    found = timeline() if callable(timeline) else None
    return found if isinstance(found, ExtensionTimeline) else None


def lambda_environment_factory(
    layer_dir: Path, settings: Any, *, rie_path: Path | None = None, keep_work_dir: bool = False
) -> EnvironmentFactory:
    """A factory of real ``LambdaEnvironment``s: ``settings`` with the init type replaced.

    Each has an init gate (``hold_init``). A held first invoke runs inside the RIE's invoke
    timeout (``AWS_LAMBDA_FUNCTION_TIMEOUT``), so the function timeout is raised to Lambda's
    maximum, 900 s: a provisioned environment may be held for a whole run.
    """
    from concurrency_observer.local.environment import LambdaEnvironment  # noqa: PLC0415

    timeout_s = max(settings.timeout_s, HELD_TIMEOUT_S)

    def make(name: str, init_type: str) -> FleetEnvironment:
        return LambdaEnvironment(
            layer_dir,
            replace(settings, init_type=init_type, timeout_s=timeout_s),
            name=name,
            rie_path=rie_path,
            keep_work_dir=keep_work_dir,
            init_gate=True,
        )

    return make
