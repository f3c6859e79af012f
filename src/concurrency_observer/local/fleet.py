"""A small local control plane over real Lambda environments: routing, scale-out, idle, shutdown.

``Fleet`` does for environments on this machine what Lambda's control plane does for a function:

- **Routing.** ``invoke(payload)`` sends one invocation to an idle environment: a provisioned one
  first (Lambda spills over to on-demand only when provisioned concurrency is busy), else the
  on-demand one used most recently, so the others stay idle and can be reclaimed.
- **Scale-out.** When every environment is busy, a new on-demand environment is started for the
  invocation (its first invoke is its init: a cold start). At ``max_environments`` (provisioned
  ones included, as Lambda counts them against the concurrency limit) the invocation is
  **throttled** at once, like Lambda's 429, and counted as such.
- **Idle timeout.** A reaper thread shuts down on-demand environments idle for ``idle_timeout``.
  Provisioned environments stay until they are removed (``provision(0)``) or the fleet closes.
- **Provisioned concurrency.** ``provision(P)`` brings up ``ceil(P * over_provisioning)``
  environments with ``AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency``. The RIE has no
  eager-init option (it initializes on the first invoke; its flags are the two addresses,
  ``--log-level`` and ``--enable-init-caching``), so each is brought up by a **warm-up invoke**
  (``{"sleep_ms": 0, "warmup": true}``), counted as an invocation in the ground truth because the
  extension counts it in ``EnvironmentInvocations``. The factor (default 1.0) is the knob that
  makes the local study over-provision on purpose, so the measurement pipeline can be checked
  against a known truth.
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
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, Final, Protocol

from concurrency_observer import schema
from concurrency_observer.errors import UserError

WARMUP_PAYLOAD: Final[Mapping[str, object]] = {"sleep_ms": 0, "warmup": True}
_INIT_TYPES: Final = (schema.INIT_PROVISIONED, schema.INIT_ON_DEMAND)


class FleetEnvironment(Protocol):
    """What the fleet needs of an environment (``LambdaEnvironment`` has it all)."""

    name: str

    def start(self) -> object:
        """Start it, ready for invocations (init happens on the first)."""
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

    def provisioned_environments(self, requested: int) -> int:
        """How many environments ``requested`` provisioned concurrency brings up (ceil(P x f))."""
        # round() first: 2 * 1.1 is 2.2000000000000002 in binary, whose ceil would be 3.
        return math.ceil(round(requested * self.over_provisioning, 9))


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
    state: SlotState = SlotState.STARTING
    initialized: bool = False  # its first invoke (the init) was sent
    warm: bool = False  # its first invoke was answered: the init is over
    last_active: float = 0.0
    invocations: int = 0


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

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: every count, by init type where it has one."""
        return {
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
            "errors": list(self.errors),
        }


def _d(counts: Mapping[str, int]) -> dict[str, int]:
    return {k: counts[k] for k in sorted(counts)}


class ShutdownStagger:
    """Shuts environments down at most ``parallel`` at a time, SIGTERMs at least ``gap`` apart.

    ``submit`` returns at once (a future); ``wait()`` blocks until everything submitted is done.
    """

    def __init__(
        self,
        parallel: int,
        gap: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="fleet-stop")
        self._gap = gap
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_at = 0.0
        self._pending: set[Future[Any]] = set()

    def submit(self, stop: Callable[[], object]) -> Future[Any]:
        """Run ``stop`` (an environment's ``shutdown``) on its turn."""
        future = self._pool.submit(self._on_turn, stop)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _on_turn(self, stop: Callable[[], object]) -> object:
        with self._lock:
            turn = max(self._clock(), self._next_at)
            self._next_at = turn + self._gap
        delay = turn - self._clock()
        if delay > 0:
            self._sleep(delay)
        return stop()

    def wait(self) -> None:
        """Block until every submitted shutdown has finished."""
        while True:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                return
            for future in pending:
                future.exception()  # waits; the failure itself is reported by the callback

    def close(self) -> None:
        """Wait for everything submitted, then stop the worker threads."""
        self.wait()
        self._pool.shutdown(wait=True)


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
        self._errors: list[str] = []
        self._peak_live = 0
        self._names = 0
        self._closing = False
        self._closed = False
        self._stop_reaper = threading.Event()
        self._reaper: threading.Thread | None = None
        if reaper:
            self._reaper = threading.Thread(
                target=self._reap_loop, name="fleet-reaper", daemon=True
            )
            self._reaper.start()

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
                slot = self._new_slot(schema.INIT_ON_DEMAND)
            else:
                slot.state = SlotState.BUSY
        if cold and not self._start(slot, warmup=False):
            return InvocationOutcome(Outcome.FAILED, slot.init_type, cold, error="no environment")
        return self._invoke_on(slot, payload, cold=cold, warmup=False)

    def _idle_slot(self) -> Slot | None:
        idle = [s for s in self._slots if s.state is SlotState.IDLE]
        if not idle:
            return None
        # Provisioned first, then the most recently used: the rest stay idle and get reclaimed.
        return max(idle, key=lambda s: (s.init_type == schema.INIT_PROVISIONED, s.last_active))

    def _active_count(self) -> int:
        active = (SlotState.STARTING, SlotState.IDLE, SlotState.BUSY)
        return sum(1 for s in self._slots if s.state in active)

    def _new_slot(self, init_type: str) -> Slot:
        self._names += 1
        short = "pc" if init_type == schema.INIT_PROVISIONED else "od"
        environment = self._factory(f"{short}{self._names}", init_type)
        slot = Slot(environment, init_type, last_active=self._clock())
        self._slots.append(slot)
        return slot

    def _start(self, slot: Slot, *, warmup: bool) -> bool:
        """Start the slot's environment within the start bound; False (slot retired) if not.

        With ``warmup`` the first invoke (the init) is sent here too, inside the bound.
        """
        with self._start_slots:
            try:
                slot.environment.start()
            except UserError as exc:
                self._retire_failed(slot, f"{slot.environment.name} did not start: {exc}")
                return False
            with self._changed:
                abandon = self._closing
                if abandon:
                    slot.state = SlotState.STOPPED
                    self._changed.notify_all()
                elif not warmup:
                    slot.state = SlotState.BUSY
            if abandon:  # never invoked, so never initialized: nothing to SHUTDOWN
                slot.environment.kill()
                return False
            if warmup:
                outcome = self._invoke_on(slot, WARMUP_PAYLOAD, cold=True, warmup=True)
                return outcome.outcome is Outcome.SERVED
        return True

    def _invoke_on(
        self, slot: Slot, payload: object, *, cold: bool, warmup: bool
    ) -> InvocationOutcome:
        with self._changed:
            # Counted when sent: the first invoke starts the init, and a SIGTERM arriving before
            # its answer (Ctrl-C) still finds an environment whose extension records both.
            if not slot.initialized:
                slot.initialized = True
                self._started[slot.init_type] += 1
                self._peak_live = max(self._peak_live, self._live_count())
        began = self._clock()
        try:
            slot.environment.invoke(payload)
        except UserError as exc:
            self._retire_failed(slot, f"{slot.environment.name}: {exc}")
            return InvocationOutcome(Outcome.FAILED, slot.init_type, cold, error=str(exc))
        latency = self._clock() - began
        stop_now = False
        with self._changed:
            slot.warm = True
            slot.invocations += 1
            self._invocations[slot.init_type] += 1
            self._counts["warmups" if warmup else "served"] += 1
            slot.last_active = self._clock()
            if slot.state in (SlotState.STOPPING, SlotState.STOPPED):
                pass  # close() took it while it was answering
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

        Raising adds environments (started with a warm-up invoke, within the start bound);
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
            new = [self._new_slot(schema.INIT_PROVISIONED) for _ in range(target - len(current))]
            extra = current[target:] if target < len(current) else []
        if new:
            with ThreadPoolExecutor(self.config.parallel_starts, "fleet-provision") as starter:
                list(starter.map(lambda s: self._start(s, warmup=True), new))
        for slot in extra:
            self._stop_when_idle(slot)
        self._stagger.wait()
        with self._lock:
            return sum(1 for s in self._slots if self._is_active_provisioned(s))

    @staticmethod
    def _is_active_provisioned(slot: Slot) -> bool:
        active = (SlotState.STARTING, SlotState.IDLE, SlotState.BUSY)
        return slot.init_type == schema.INIT_PROVISIONED and slot.state in active

    def provisioned_ready(self) -> int:
        """Provisioned environments initialized and not stopping (what READY waits for)."""
        with self._lock:
            return sum(1 for s in self._slots if self._is_active_provisioned(s) and s.warm)

    def _stop_when_idle(self, slot: Slot) -> None:
        with self._changed:
            while slot.state in (SlotState.STARTING, SlotState.BUSY):
                self._changed.wait(timeout=1.0)
            if slot.state is not SlotState.IDLE:
                return
            slot.state = SlotState.STOPPING
        self._stop(slot, reason="removed")

    # -- idle timeout and shutdowns ----------------------------------------------------------

    def reap_idle(self) -> int:
        """Shut down (staggered, in the background) on-demand environments idle too long."""
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
            with self._changed:
                counted = slot.state is SlotState.STOPPED  # it failed meanwhile: counted there
                slot.state = SlotState.STOPPED
                if slot.initialized and not counted:
                    self._stopped[slot.init_type] += 1
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
        if self._reaper is not None:
            self._reaper.join()
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
            )

    def environments(self) -> list[FleetEnvironment]:
        """Every environment the fleet ever made, in order (their outputs hold the EMF lines)."""
        with self._lock:
            return [slot.environment for slot in self._slots]


def lambda_environment_factory(
    layer_dir: Path, settings: Any, *, rie_path: Path | None = None, keep_work_dir: bool = False
) -> EnvironmentFactory:
    """A factory of real ``LambdaEnvironment``s: ``settings`` with the init type replaced."""
    from concurrency_observer.local.environment import LambdaEnvironment  # noqa: PLC0415

    def make(name: str, init_type: str) -> FleetEnvironment:
        return LambdaEnvironment(
            layer_dir,
            replace(settings, init_type=init_type),
            name=name,
            rie_path=rie_path,
            keep_work_dir=keep_work_dir,
        )

    return make
