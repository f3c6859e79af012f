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
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, Final, Protocol

from concurrency_observer import schema
from concurrency_observer.errors import UserError
from concurrency_observer.local.extension_timeline import ExtensionTimeline, LiveSpan

WARMUP_PAYLOAD: Final[Mapping[str, object]] = {"sleep_ms": 0, "warmup": True}
HELD_TIMEOUT_S: Final = 900  # Lambda's maximum function timeout
_INIT_TYPES: Final = (schema.INIT_PROVISIONED, schema.INIT_ON_DEMAND)


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
