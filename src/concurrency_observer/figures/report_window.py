"""What a report is about: the function (``ReportRequest``) and its time window.

The window is ``[start, end)`` aligned to the period, with a look-back.

``resolve_window(...)`` checks what CloudWatch can answer (periods, retention, data points) and
returns a ``ReportWindow``; the live series counts environments from its ``lookback_start``, so
those born before the window are in it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Final

from concurrency_observer.errors import UserError
from concurrency_observer.figures.periods import Dimensions, floor_to_period
from concurrency_observer.schema import DEFAULT_NAMESPACE, FUNCTION_NAME, FUNCTION_VERSION

# How long CloudWatch keeps data at a period (seconds): older points only exist at longer periods.
# CloudWatch keeps high-resolution (sub-minute) points 3 hours, 1-minute points 15 days, 5-minute
# points 63 days.
_RETENTION_BY_PERIOD: Final = (
    (30, timedelta(hours=3)),
    (60, timedelta(days=15)),
    (300, timedelta(days=63)),
)
# Periods GetMetricData accepts below a minute (for high-resolution data, and the local moto
# server, which keeps every raw point: the local simulation reports in seconds, not minutes).
HIGH_RESOLUTION_PERIODS: Final = (1, 5, 10, 20, 30)
_MAX_PERIODS: Final = 100_800  # GetMetricData's default MaxDatapoints: one query's worth


@dataclass(frozen=True)
class ReportWindow:
    """``[start, end)`` aligned to ``period``; the live series counts from ``lookback_start``."""

    start: datetime
    end: datetime
    period: int
    lookback_start: datetime

    @property
    def lookback(self) -> timedelta:
        """How far before ``start`` the live series starts counting."""
        return self.start - self.lookback_start

    def period_starts(self, since: datetime | None = None) -> list[datetime]:
        """Every period start from ``since`` (default: the look-back start) up to ``end``."""
        step = timedelta(seconds=self.period)
        moment = self.lookback_start if since is None else since
        starts = []
        while moment < self.end:
            starts.append(moment)
            moment += step
        return starts


def _ceil(moment: datetime, period: int) -> datetime:
    epoch = math.ceil(moment.timestamp() / period) * period
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def resolve_window(
    *,
    now: datetime,
    period: int = 60,
    lookback: timedelta = timedelta(hours=6),
    since: timedelta | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> ReportWindow:
    """The report window: ``since`` before ``end``, or ``start``..``end``; ``end`` defaults to now.

    Start is rounded down and end up to a multiple of ``period`` (from the epoch), which is how
    CloudWatch aligns periods; naive datetimes are taken as UTC. Raises ``UserError`` on a
    period that isn't 1, 5, 10, 20, 30 or a positive multiple of 60, an empty window, or one too
    old for the period.
    """
    if period not in HIGH_RESOLUTION_PERIODS and (period <= 0 or period % 60):
        raise UserError(
            f"--period must be 1, 5, 10, 20, 30 or a positive multiple of 60 seconds, not {period}"
        )
    if lookback < timedelta(0):
        raise UserError("--lookback cannot be negative")
    now = _aware(now)
    end = now if end is None else _aware(end)
    if start is None:
        if since is None or since <= timedelta(0):
            raise UserError("give a positive --since, or --start")
        start = end - since
    start, end = floor_to_period(_aware(start), period), _ceil(end, period)
    if start >= end:
        raise UserError(f"the window is empty: start {_iso(start)} is not before end {_iso(end)}")
    lookback_start = floor_to_period(start - lookback, period)
    if (end - lookback_start).total_seconds() / period > _MAX_PERIODS:
        raise UserError("too many periods in the window and look-back: use a larger --period")
    for short_period, kept in _RETENTION_BY_PERIOD:
        if period <= short_period and lookback_start < now - kept:
            kept_for = f"{kept.days} days" if kept.days else f"{kept.seconds // 3600} hours"
            raise UserError(
                f"CloudWatch keeps {period}-second data for {kept_for}: "
                "use a larger --period for a window (with its look-back) that old"
            )
    return ReportWindow(start=start, end=end, period=period, lookback_start=lookback_start)


@dataclass(frozen=True)
class ReportRequest:
    """What to report on; ``provisioned`` is the concurrency the user asked for, for comparison.

    ``allocated`` and ``provisioned_source`` (``option`` or ``lambda-api``) come with
    ``--provisioned auto``, which reads the function's configuration (``aws.provisioned``).
    """

    function_name: str
    window: ReportWindow
    namespace: str = DEFAULT_NAMESPACE
    version: str | None = None
    provisioned: int | None = None
    allocated: int | None = None
    provisioned_source: str | None = None
    provisioned_configs: str = ""  # per qualifier, when read from Lambda (for a note)

    @property
    def totals_dimensions(self) -> Dimensions:
        """The dimension set the totals and the per-environment figures are read from."""
        if self.version is None:
            return ((FUNCTION_NAME, self.function_name),)
        return ((FUNCTION_NAME, self.function_name), (FUNCTION_VERSION, self.version))


def iso(moment: datetime) -> str:
    """``moment`` as ISO 8601 UTC to the second, ``...Z`` (the JSON documents' time format)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_iso = iso
