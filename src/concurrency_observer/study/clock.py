"""Time for the study: wall time for metric windows, monotonic time for timeouts, sleeping.

``SystemClock`` is the real one; ``ManualClock`` only moves when slept on, so tests and
simulations run instantly.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Protocol


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
