"""One study's loop. One repeat at level N: align the start on the counter's resolution, put N,
wait until READY, wait until the count has been unchanged for the settle period, record it, remove
N, cool down. The state is saved after every repeat; whatever happens (an error, Ctrl-C, SIGTERM),
the alias's original configuration is put back at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

from concurrency_observer.study.clock import Clock, SystemClock
from concurrency_observer.study.plan import StudyPlan
from concurrency_observer.study.ports import (
    InitCounter,
    ProvisioningTarget,
    StudyListener,
    Usage,
    UsageCounter,
    WaitProgress,
)
from concurrency_observer.study.signals import interrupts_deferred
from concurrency_observer.study.state import RepeatResult, StateStore, StudyState, pending_runs
from concurrency_observer.study.waits import wait_for_settled_count, wait_for_shutdowns


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
