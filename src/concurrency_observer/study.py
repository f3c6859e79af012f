"""The provisioned-concurrency study: the loop, the waits, the saved state and the statistics.

Pure engine, no AWS: it drives a ``ProvisioningTarget`` (set, wait for READY, remove, restore the
provisioned concurrency of one alias) and reads an ``InitCounter`` (environments initialized with
InitType ``provisioned-concurrency`` since a start time). ``aws/experiment.py`` implements both over
boto3; the local fleet implements them over simulated environments. Time comes from an injected
``Clock`` so tests and simulations run instantly.

One repeat at level N: align the start on the counter's resolution, put N, wait until READY, wait
until the count has been unchanged for the settle period, record it, remove N, cool down. The state
is saved after every repeat, so a run cut short continues where it stopped. Whatever happens (an
error, Ctrl-C, SIGTERM), the alias's original configuration is put back at the end.
"""

from __future__ import annotations

import json
import math
import os
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import FrameType
from typing import Any, Final, Literal, Protocol

from concurrency_observer.errors import UserError

STATE_FILE: Final = "study-state.json"
STATE_FORMAT: Final = 1

ReadyState = Literal["READY", "IN_PROGRESS", "FAILED"]


class StudyError(UserError):
    """The study cannot go on (a wait timed out, provisioning failed, the saved state disagrees)."""


# --- time ------------------------------------------------------------------------------------


class Clock(Protocol):
    """Wall time for metric windows, monotonic time for timeouts, and sleeping."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """``time.sleep()``."""
        time.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that only moves when slept on: for tests and simulations (sleeping is instant)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=timezone.utc)
        self._elapsed = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        """The simulated wall time."""
        return self._now + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        """Seconds slept so far."""
        return self._elapsed

    def sleep(self, seconds: float) -> None:
        """Advance the clock by ``seconds`` at once."""
        seconds = max(0.0, seconds)
        self.sleeps.append(seconds)
        self._elapsed += seconds


# --- what the engine drives ------------------------------------------------------------------


@dataclass(frozen=True)
class WaitProgress:
    """One step of a wait, for a progress display: ``completed`` of ``total`` (None: unknown)."""

    label: str
    completed: float
    total: float | None
    detail: str = ""


ProgressCallback = Callable[[WaitProgress], None]


@dataclass(frozen=True)
class ProvisioningStatus:
    """What the control plane says about the configuration being brought up."""

    state: ReadyState
    requested: int
    allocated: int
    reason: str = ""


@dataclass(frozen=True)
class ReadyResult:
    """The configuration reached READY: how many environments were allocated, after how long."""

    allocated: int
    seconds: float


class ProvisioningTarget(Protocol):
    """The provisioned concurrency of one alias (or version) of one function."""

    @property
    def description(self) -> str:
        """A short name for messages, such as ``my-function:live``."""
        ...

    def read_config(self) -> int | None:
        """The provisioned concurrency requested now, or None when there is no configuration."""
        ...

    def set_provisioned(self, level: int) -> None:
        """Ask for ``level`` provisioned environments (returns before they are ready)."""
        ...

    def wait_ready(self, level: int, timeout: float, on_progress: ProgressCallback) -> ReadyResult:
        """Block until the configuration is READY; raise ``StudyError`` on FAILED or timeout."""
        ...

    def remove(self) -> None:
        """Remove the configuration (no error if there is none)."""
        ...

    def restore(self, original: int | None) -> str:
        """Put ``original`` back (None: no configuration) and say, in one line, what was done."""
        ...


class InitCounter(Protocol):
    """Counts environments initialized for provisioned concurrency on the target's function."""

    @property
    def resolution_seconds(self) -> float:
        """The granularity of the count's time window (60 for CloudWatch minutes, 0 if exact)."""
        ...

    def count(self, since: datetime) -> int:
        """``EnvironmentInit`` with InitType ``provisioned-concurrency`` from ``since`` to now."""
        ...


@dataclass(frozen=True)
class Usage:
    """Provisioned environments shut down since a start, and how many of them were ever invoked."""

    shut_down: int
    invoked: int


class UsageCounter(Protocol):
    """Reads how the provisioned environments of a repeat were used, from their shutdowns."""

    def usage(self, since: datetime) -> Usage:
        """Provisioned ``EnvironmentShutdown`` from ``since`` to now, and those ever invoked
        (``FirstInvoke`` prompt or delayed)."""
        ...


class StudyListener(Protocol):
    """Where the engine reports what it does: one-line notes and progress of the waits."""

    def note(self, message: str) -> None:
        """Report a step in one line."""
        ...

    def progress(self, update: WaitProgress) -> None:
        """Report the progress of the current wait."""
        ...


# --- the two waits ---------------------------------------------------------------------------


def poll_until_ready(
    read_status: Callable[[], ProvisioningStatus],
    *,
    timeout: float,
    interval: float,
    clock: Clock,
    on_progress: ProgressCallback,
) -> ReadyResult:
    """Poll ``read_status`` every ``interval`` s until READY; FAILED or timeout: ``StudyError``."""
    started = clock.monotonic()
    while True:
        status = read_status()
        elapsed = clock.monotonic() - started
        on_progress(
            WaitProgress(
                "provisioning",
                status.allocated,
                status.requested or None,
                f"{status.state} {status.allocated}/{status.requested} allocated",
            )
        )
        if status.state == "READY":
            return ReadyResult(status.allocated, elapsed)
        if status.state == "FAILED":
            reason = status.reason or "no reason given"
            raise StudyError(f"provisioned concurrency {status.requested} FAILED: {reason}")
        if elapsed >= timeout:
            raise StudyError(
                f"provisioned concurrency {status.requested} not READY after {timeout:.0f}s "
                f"({status.allocated} allocated); raise --timeout or try a lower level"
            )
        clock.sleep(min(interval, max(0.0, timeout - elapsed)))


@dataclass(frozen=True)
class SettledCount:
    """The count once it stopped growing; ``settled`` is False if the bound came first."""

    count: int
    seconds: float
    settled: bool


def wait_for_settled_count(
    read_count: Callable[[], int],
    *,
    settle: float,
    interval: float,
    timeout: float,
    clock: Clock,
    on_progress: ProgressCallback,
) -> SettledCount:
    """Poll ``read_count`` until it has not changed for ``settle`` s, within ``timeout`` s.

    Metrics are eventually consistent: data points land in CloudWatch a minute or more after the
    environments put them, so a count is only trusted once it stops moving. A count still at zero
    never starts the settle period (zero means "nothing arrived yet", not "nothing happened"); at
    the bound, a zero count is an error and a moving count is returned with ``settled=False``.
    """
    started = clock.monotonic()
    last = read_count()
    stable_since: float | None = started if last > 0 else None
    while True:
        now = clock.monotonic()
        stable_for = 0.0 if stable_since is None else now - stable_since
        on_progress(WaitProgress("settling", min(stable_for, settle), settle, f"count {last}"))
        if stable_since is not None and stable_for >= settle:
            return SettledCount(last, now - started, settled=True)
        if now - started >= timeout:
            if last == 0:
                raise StudyError(
                    f"no EnvironmentInit with InitType provisioned-concurrency after {timeout:.0f}s"
                )
            return SettledCount(last, now - started, settled=False)
        remaining = timeout - (now - started)
        if stable_since is not None:
            remaining = min(remaining, settle - stable_for)
        clock.sleep(max(0.0, min(interval, remaining)))
        value = read_count()
        if value != last:
            last = value
            stable_since = clock.monotonic() if value > 0 else None


def wait_for_shutdowns(
    read_count: Callable[[], int],
    *,
    expected: int,
    settle: float,
    interval: float,
    timeout: float,
    clock: Clock,
    on_progress: ProgressCallback,
) -> SettledCount:
    """Poll ``read_count`` (shutdowns seen) until it reaches ``expected``, or has not changed for
    ``settle`` s, or ``timeout`` s have passed; never an error: what was seen is the answer.

    Unlike the init count, zero is a possible answer (Lambda may not have shut any down yet):
    ``settled`` says whether all ``expected`` were seen or the count stopped moving.
    """
    started = clock.monotonic()
    last = read_count()
    stable_since = started
    while True:
        now = clock.monotonic()
        stable_for = now - stable_since
        on_progress(WaitProgress("shutdowns", min(last, expected), expected, f"{last} seen"))
        if last >= expected or (last > 0 and stable_for >= settle):
            return SettledCount(last, now - started, settled=True)
        if now - started >= timeout:
            return SettledCount(last, now - started, settled=False)
        clock.sleep(max(0.0, min(interval, timeout - (now - started))))
        value = read_count()
        if value != last:
            last, stable_since = value, clock.monotonic()


# --- the plan and the saved state ------------------------------------------------------------


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


# --- interrupts ------------------------------------------------------------------------------


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block SIGTERM raises KeyboardInterrupt, so the same ``finally`` cleans up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def interrupts_deferred(on_signal: Callable[[], None]) -> Iterator[None]:
    """Inside the block Ctrl-C and SIGTERM only call ``on_signal``: a restore must not be cut."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ignore(signum: int, frame: FrameType | None) -> None:
        on_signal()

    previous = {sig: signal.signal(sig, ignore) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --- the loop --------------------------------------------------------------------------------


@dataclass
class Study:
    """One study: a plan, the target and counter it measures, and where its state is saved."""

    plan: StudyPlan
    target: ProvisioningTarget
    counter: InitCounter
    store: StateStore
    listener: StudyListener
    clock: Clock = field(default_factory=SystemClock)
    usage: UsageCounter | None = None  # when set: after each removal, created vs ever invoked

    def run(self) -> StudyState:
        """Measure every pending repeat, saving after each; restore the original config at the end.

        Returns the state; a repeat still running when an error or Ctrl-C arrives is not saved.
        """
        state = self.store.load(self.plan)
        pending = pending_runs(self.plan, state)
        if not pending:
            self.listener.note("every repeat is already measured; nothing to run")
            return state
        current = self.target.read_config()
        if not state.original_known:
            # Saved before the first change: a run killed hard (SIGKILL, power) leaves a level set,
            # and the next run must restore what the user had, not that leftover.
            state.original, state.original_known = current, True
            self.store.save(state)
        try:
            if current is not None:
                self.listener.note(
                    f"{self.target.description} has provisioned concurrency {current}; "
                    "removing it so every repeat starts from none"
                )
                self.target.remove()
                self._cool_down()
            for index, (level, repeat) in enumerate(pending):
                state.results.append(self._measure(level, repeat))
                self.store.save(state)
                if index < len(pending) - 1:
                    self._cool_down()
        finally:
            self._restore(state.original)
        return state

    def _measure(self, level: int, repeat: int) -> RepeatResult:
        label = f"level {level}, repeat {repeat}/{self.plan.repeats}"
        start = self._aligned_start()
        self.listener.note(f"{label}: putting provisioned concurrency {level}")
        self.target.set_provisioned(level)
        ready = self.target.wait_ready(level, self.plan.ready_timeout, self.listener.progress)
        self.listener.note(
            f"{label}: READY after {ready.seconds:.0f}s ({ready.allocated} allocated); "
            "waiting for the count to settle"
        )
        settled = wait_for_settled_count(
            lambda: self.counter.count(start),
            settle=self.plan.settle,
            interval=self.plan.poll_interval,
            timeout=self.plan.settle_timeout,
            clock=self.clock,
            on_progress=self.listener.progress,
        )
        self.target.remove()
        note = "" if settled.settled else " (still changing at the bound: recorded as is)"
        self.listener.note(f"{label}: {settled.count} environments initialized{note}")
        usage = self._read_usage(label, start, settled.count)
        return RepeatResult(
            level=level,
            repeat=repeat,
            count=settled.count,
            started_at=start.isoformat(),
            ready_seconds=round(ready.seconds, 3),
            allocated=ready.allocated,
            settle_seconds=round(settled.seconds, 3),
            settled=settled.settled,
            shut_down=None if usage is None else usage.shut_down,
            invoked=None if usage is None else usage.invoked,
        )

    def _read_usage(self, label: str, start: datetime, created: int) -> Usage | None:
        """After the removal: wait for the shutdowns (bounded), then read the usage.

        Lambda shuts removed environments down at its own pace, and each reports at its
        SHUTDOWN; the wait ends when all ``created`` were seen, when the count stops moving for
        the settle period, or at ``--timeout``. Ever invoked counts the shutdowns seen by then.
        """
        counter = self.usage
        if counter is None:
            return None
        seen = wait_for_shutdowns(
            lambda: counter.usage(start).shut_down,
            expected=created,
            settle=self.plan.settle,
            interval=self.plan.poll_interval,
            timeout=self.plan.settle_timeout,
            clock=self.clock,
            on_progress=self.listener.progress,
        )
        usage = counter.usage(start)
        note = "" if seen.settled else " (still arriving at the bound)"
        self.listener.note(
            f"{label}: {usage.shut_down} of {created} shut down{note}, "
            f"{usage.invoked} of them ever invoked"
        )
        return usage

    def _aligned_start(self) -> datetime:
        """Wait for the next boundary of the counter's resolution and return it.

        CloudWatch sums whole minutes: a start inside a minute would count the environments of the
        previous repeat initialized earlier in that minute. On a boundary the windows are disjoint.
        """
        resolution = self.counter.resolution_seconds
        now = self.clock.now().timestamp()
        if resolution <= 0:
            return self.clock.now()
        boundary = math.ceil(now / resolution) * resolution
        # Sleep until the boundary itself, never a hair before it (a start that falls back into
        # the previous minute would let that minute's environments in); 1 ms absorbs rounding.
        while (remaining := boundary - self.clock.now().timestamp()) > 0.001:
            self.clock.sleep(remaining)
        return datetime.fromtimestamp(boundary, timezone.utc)

    def _cool_down(self) -> None:
        """Give the control plane time to take the removed environments away before the next put."""
        total = self.plan.cooldown
        waited = 0.0
        while waited < total:
            self.listener.progress(WaitProgress("cooling down", waited, total))
            step = min(self.plan.poll_interval or total, total - waited)
            self.clock.sleep(step)
            waited += step
        self.listener.progress(WaitProgress("cooling down", total, total))

    def _restore(self, original: int | None) -> None:
        def still_restoring() -> None:
            self.listener.note("restoring the original configuration first, please wait")

        with interrupts_deferred(still_restoring):
            self.listener.note(self.target.restore(original))


# --- statistics ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LevelSummary:
    """The sample's row for one level: requested, and the environments actually initialized."""

    requested: int
    repeats: int
    mean: float
    stdev: float | None
    minimum: int
    maximum: int
    shut_down_mean: float | None = None  # over the repeats whose usage was read
    invoked_mean: float | None = None  # environments ever invoked, mean over those repeats

    @property
    def ratio(self) -> float:
        """Mean environments initialized per environment requested."""
        return self.mean / self.requested


def summarize(results: Sequence[RepeatResult]) -> list[LevelSummary]:
    """One row per level, sorted by level; ``stdev`` is the sample stdev (None below 2 repeats)."""
    by_level: dict[int, list[RepeatResult]] = {}
    for result in results:
        by_level.setdefault(result.level, []).append(result)
    summaries = []
    for level, repeats in sorted(by_level.items()):
        counts = [r.count for r in repeats]
        read = [r for r in repeats if r.shut_down is not None and r.invoked is not None]
        summaries.append(
            LevelSummary(
                requested=level,
                repeats=len(counts),
                mean=statistics.fmean(counts),
                stdev=statistics.stdev(counts) if len(counts) > 1 else None,
                minimum=min(counts),
                maximum=max(counts),
                shut_down_mean=statistics.fmean(r.shut_down or 0 for r in read) if read else None,
                invoked_mean=statistics.fmean(r.invoked or 0 for r in read) if read else None,
            )
        )
    return summaries


def parse_levels(text: str) -> tuple[int, ...]:
    """``"10,50,100"`` as levels; ``StudyError`` naming the bad item otherwise."""
    levels: list[int] = []
    for item in (part.strip() for part in text.split(",")):
        if not item.isdigit() or int(item) < 1:
            raise StudyError(f"--levels: {item!r} is not a whole number of at least 1")
        levels.append(int(item))
    return tuple(levels)
