"""The invocation load of a simulation: a seeded arrival schedule, and a runner that plays it.

``arrival_schedule(LoadProfile(...))`` is pure and reproducible: a Poisson process at ``rate``
invocations per second for ``duration`` seconds, plus ``bursts`` bursts of ``burst_size``
invocations arriving within ``burst_spread`` seconds, spread over the run. The steady rate keeps a
few environments warm; a burst needs more environments than are idle at that moment, so the
control plane must scale out on demand; the quiet after a burst lets the extra environments
reach the idle timeout and be shut down. The same seed gives the same schedule (how many
environments a run then needs still depends on how fast this machine answers).

``proactive_schedule(rate, duration, seed)`` is the control plane's own seeded Poisson process:
when it initializes an on-demand environment ahead of demand (``Fleet.initialize_ahead``).

``run_load(invoke, schedule, payload)`` sends each invocation at its time, from a thread pool so
a slow invocation never delays the next arrival, and returns the outcomes; ``stop`` ends it early.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class LoadProfile:
    """What ``simulate --rate --duration --seed`` and the burst options ask for."""

    rate: float
    duration: float
    seed: int = 0
    bursts: int = 2
    burst_size: int = 8
    burst_spread: float = 0.1

    def __post_init__(self) -> None:
        if self.rate < 0 or self.duration <= 0:
            raise ValueError("the rate cannot be negative and the duration must be positive")
        if self.bursts < 0 or self.burst_size < 0 or self.burst_spread < 0:
            raise ValueError("bursts, their size and spread cannot be negative")


def burst_times(profile: LoadProfile) -> list[float]:
    """When each burst starts: the k-th in the k-th of ``bursts`` equal parts of the first 70%.

    The last 30% of the run stays burst-free, so the environments a burst added have time to go
    idle and be shut down before the end.
    """
    if profile.bursts == 0:
        return []
    part = 0.7 * profile.duration / profile.bursts
    return [part * (k + 0.5) for k in range(profile.bursts)]


def arrival_schedule(profile: LoadProfile) -> list[float]:
    """Sorted arrival times in seconds from the start (seeded: the same profile, the same list)."""
    rng = random.Random(profile.seed)
    arrivals: list[float] = []
    if profile.rate > 0:
        moment = rng.expovariate(profile.rate)
        while moment < profile.duration:
            arrivals.append(moment)
            moment += rng.expovariate(profile.rate)
    for start in burst_times(profile):
        arrivals.extend(
            min(profile.duration, start + rng.uniform(0.0, profile.burst_spread))
            for _ in range(profile.burst_size)
        )
    return sorted(arrivals)


def proactive_schedule(rate: float, duration: float, seed: int) -> list[float]:
    """Seconds from the start of the load at which an environment is initialized ahead of demand.

    A Poisson process at ``rate`` per second over ``duration``, seeded apart from the arrivals
    (the same seed gives both the same arrivals and the same proactive inits).
    """
    if rate < 0 or duration <= 0:
        raise ValueError("the proactive rate cannot be negative and the duration must be positive")
    rng = random.Random(f"proactive-{seed}")
    moments: list[float] = []
    if rate > 0:
        moment = rng.expovariate(rate)
        while moment < duration:
            moments.append(moment)
            moment += rng.expovariate(rate)
    return moments


def run_load(
    invoke: Callable[[], T],
    schedule: Sequence[float],
    *,
    workers: int,
    stop: threading.Event | None = None,
    on_done: Callable[[T], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[T]:
    """Call ``invoke()`` at each time of ``schedule`` (seconds from now); every result, in order.

    ``workers`` bounds the invocations in flight (give it the fleet's maximum plus a margin:
    throttled invocations return at once). An arrival never waits for an earlier invocation,
    unless all workers are busy. ``stop`` set: no new arrival; those in flight finish.
    """
    stop = stop or threading.Event()
    began = clock()
    futures: list[Future[T]] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="load") as pool:
        for at in schedule:
            if stop.wait(max(0.0, began + at - clock())):
                break
            future = pool.submit(invoke)
            if on_done is not None:
                future.add_done_callback(_report_to(on_done))
            futures.append(future)
    return [future.result() for future in futures]


def _report_to(on_done: Callable[[T], None]) -> Callable[[Future[T]], None]:
    """A done-callback handing a successful result to ``on_done`` (failures surface later)."""

    def callback(future: Future[T]) -> None:
        if future.exception() is None:
            on_done(future.result())

    return callback
