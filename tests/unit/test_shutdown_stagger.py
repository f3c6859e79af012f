"""Staggered shutdowns: bounded in parallel, spaced in time."""

from __future__ import annotations

import itertools
import threading
import time

from concurrency_observer.local.shutdown_stagger import ShutdownStagger


def test_stagger_bounds_parallel_shutdowns_and_spaces_them() -> None:
    """At most ``parallel`` shutdowns at once, and two SIGTERMs at least ``gap`` apart."""
    stagger = ShutdownStagger(parallel=2, gap=0.02)
    lock = threading.Lock()
    running = 0
    peak = 0
    starts: list[float] = []

    def stop() -> None:
        nonlocal running, peak
        with lock:
            starts.append(time.monotonic())
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    for _ in range(6):
        stagger.submit(stop)
    stagger.close()
    starts.sort()
    assert len(starts) == 6
    assert peak <= 2
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 0.019
