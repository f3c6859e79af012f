"""Staggered shutdowns: a few at a time and a gap between two SIGTERMs.

Each environment must meet the RIE's 2 s SHUTDOWN deadline; fifty SIGTERMed at the same instant
overrun it on 2 cores (docs/design.md, "Staggered, bounded shutdowns and starts in the fleet").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


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
