"""The study's waits: until the configuration is READY, until the init count settles, until
the shutdowns are seen. Metrics are eventually consistent, so a count is trusted once it stops
moving.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from concurrency_observer.study.clock import Clock
from concurrency_observer.study.errors import StudyError
from concurrency_observer.study.ports import (
    ProgressCallback,
    ProvisioningStatus,
    ReadyResult,
    WaitProgress,
)


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
