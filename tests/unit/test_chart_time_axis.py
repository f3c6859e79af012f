"""The chart's time axis reads differently at every tick, for a minute-long window or a week."""

from __future__ import annotations

from datetime import timedelta

import pytest

from concurrency_observer.reporting.chart import time_format


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        (timedelta(seconds=70), "%H:%M:%S"),
        (timedelta(minutes=10), "%H:%M:%S"),
        (timedelta(hours=3), "%H:%M"),
        (timedelta(days=7), "%m-%d %H:%M"),
    ],
)
def test_time_format_fits_the_window(span: timedelta, expected: str) -> None:
    """Seconds for a local simulation's minutes, the date once the window spans days."""
    assert time_format(span) == expected
