"""The platform's own account of the environment, from the Telemetry API's ``platform`` events.

Pure and defensive: ``PlatformAccount.observe_batch`` takes the body of one delivery (a JSON array
of events) as Lambda posts it, ignores what it cannot read (counting it), and keeps only what the
environment record needs (``environment_record``'s names):

- ``platform.initStart``: ``runtimeVersion``, ``phase``;
- ``platform.initReport``: ``status``, ``errorType``, ``phase``, ``metrics.durationMs`` (the last
  report wins: a re-init after a failure reports again, with phase ``invoke``);
- ``platform.restoreReport`` (SnapStart): ``metrics.durationMs``;
- when the extension cannot count INVOKE events itself (Lambda Managed Instances, or registered
  for SHUTDOWN alone): ``platform.start`` and ``platform.report`` by ``requestId``. On LMI those
  arrive out of order across concurrent invocations and there is no ``platform.runtimeDone``,
  so each invocation is an interval from its start's ``time`` to that plus the report's
  ``durationMs`` (or the report's ``time``), whichever of the two events comes first.

Memory stays bounded however long the environment lives: an invocation is kept only until both
its events are in, and finished intervals only for ``HORIZON_MS`` behind the newest event (their
contribution to the most in flight at once is folded in before they are dropped). Events arrive
within the subscription's buffering timeout of each other, far less than the horizon.

The listener's thread calls ``observe_batch``, the main thread ``facts`` at SHUTDOWN: a lock
keeps the two apart, and ``facts`` never waits for it long (it uses what has arrived).
"""

from __future__ import annotations

import _thread
import json

from concurrency_observer import environment_record as fields
from concurrency_observer import schema

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

INIT_START = "platform.initStart"
INIT_REPORT = "platform.initReport"
RESTORE_REPORT = "platform.restoreReport"
START = "platform.start"
REPORT = "platform.report"
# Bodies holding none of these are skipped unparsed when invocations are not counted: on standard
# Lambda every invoke posts start/runtimeDone/report, and parsing them would buy nothing.
INIT_MARKERS = (b"platform.init", b"platform.restore")

HORIZON_MS = 60_000.0  # finished invocations kept this long behind the newest event
COMPACT_AT = 4096  # finished invocations held before the old ones are folded and dropped
MAX_PENDING = 10_000  # invocations with one event of two, at most (a lost event must not grow it)
RECENT_DONE = 1024  # ids of finished invocations remembered, so an event delivered twice is seen
FACTS_LOCK_WAIT = 0.05  # seconds facts() waits for a delivery being parsed, then reads anyway


def parse_time_ms(text: object) -> float | None:
    """Epoch milliseconds of an event's ``time`` (``2022-10-12T00:00:15.064Z``), else ``None``.

    Parsed by hand: ``datetime.fromisoformat`` refuses the ``Z`` before Python 3.11, and the
    ``datetime`` module is not worth importing for one format.
    """
    if not isinstance(text, str) or len(text) < 20 or len(text) > 40 or not text.endswith("Z"):
        return None
    try:
        year, month, day = int(text[0:4]), int(text[5:7]), int(text[8:10])
        hour, minute = int(text[11:13]), int(text[14:16])
        seconds = float(text[17:-1])
    except ValueError:
        return None
    if text[4] + text[7] + text[10] + text[13] + text[16] != "--T::":
        return None
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and seconds < 61):
        return None
    # Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return ((days * 24 + hour) * 60 + minute) * 60_000 + seconds * 1000


def _duration_ms(record: dict[str, Any]) -> float | None:
    """``record.metrics.durationMs`` as a finite non-negative number, else ``None``."""
    metrics = record.get("metrics")
    if not isinstance(metrics, dict):
        return None
    return _milliseconds(metrics.get("durationMs"))


def _milliseconds(raw: object) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    if not 0 <= raw < 1e12:  # also refuses NaN
        return None
    return round(float(raw), 3)


def _text(raw: object) -> str | None:
    if not isinstance(raw, str) or not raw:
        return None
    return fields.cut_text(raw)


def most_in_flight(intervals: list[tuple[float, float]]) -> int:
    """The most intervals ``[start, end)`` open at once (one ending as another starts: not both)."""
    edges = [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals]
    edges.sort()  # at one instant, -1 sorts before +1
    running = best = 0
    for _, step in edges:
        running += step
        best = max(best, running)
    return best


class PlatformAccount:
    """What the Telemetry API told about this environment; ``facts`` gives the record's fields."""

    def __init__(self, *, count_invocations: bool) -> None:
        self.count_invocations = count_invocations
        self.events = 0  # events read
        self.malformed = 0  # deliveries or events that could not be read
        self.runtime_version: str | None = None
        self.init_phase: str | None = None
        self.init_status: str | None = None
        self.init_error_type: str | None = None
        self.init_duration_ms: float | None = None
        self.restore_duration_ms: float | None = None
        # Invocations (counted only when the extension cannot count INVOKE itself).
        self._started: dict[str, float] = {}  # requestId: start, report not in yet
        self._reported: dict[str, tuple[float, float]] = {}  # requestId: (start, end), no start
        self._finished: list[tuple[float, float]] = []
        self._finished_count = 0
        self._done: dict[str, None] = {}  # the latest finished requestIds, oldest first
        self._first_start: float | None = None
        self._last_end: float | None = None  # the latest end of an invocation, epoch ms
        self._newest = 0.0
        self._most_in_flight = 0
        self._lock = _thread.allocate_lock()

    def observe_batch(self, body: bytes) -> int:
        """Read one delivery (a JSON array of events); the events read in it. Never raises."""
        if not self.count_invocations and not any(mark in body for mark in INIT_MARKERS):
            return 0
        try:
            events = json.loads(body)
        except ValueError:  # also UnicodeDecodeError
            self.malformed += 1
            return 0
        if not isinstance(events, list):
            self.malformed += 1
            return 0
        with self._lock:
            before = self.events
            for event in events:
                try:
                    self.observe(event)
                except Exception:  # a hostile event must cost nothing but itself
                    self.malformed += 1
            return self.events - before

    def observe(self, event: object) -> None:
        """Take one event into account (the caller holds the lock)."""
        if not isinstance(event, dict):
            self.malformed += 1
            return
        kind, record = event.get("type"), event.get("record")
        if not isinstance(kind, str) or not isinstance(record, dict):
            self.malformed += 1
            return
        self.events += 1
        if kind == INIT_START:
            self.runtime_version = _text(record.get("runtimeVersion")) or self.runtime_version
            self.init_phase = _text(record.get("phase")) or self.init_phase
        elif kind == INIT_REPORT:
            self.init_status = _text(record.get("status"))
            self.init_phase = _text(record.get("phase")) or self.init_phase
            error_type = _text(record.get("errorType"))
            self.init_error_type = error_type if self.init_status != "success" else None
            self.init_duration_ms = _duration_ms(record)
        elif kind == RESTORE_REPORT:
            self.restore_duration_ms = _duration_ms(record)
        elif self.count_invocations and kind in (START, REPORT):
            self._observe_invocation(kind, event, record)

    def _observe_invocation(self, kind: str, event: dict[str, Any], record: dict[str, Any]) -> None:
        request_id = record.get("requestId")
        time_ms = parse_time_ms(event.get("time"))
        if not isinstance(request_id, str) or time_ms is None:
            self.malformed += 1
            return
        self._newest = max(self._newest, time_ms)
        if request_id in self._done:
            return  # delivered twice
        if kind == START:
            if request_id in self._started:
                return  # delivered twice
            reported = self._reported.pop(request_id, None)
            if reported is not None:
                self._finish(request_id, time_ms, max(time_ms, reported[1]))
            elif len(self._started) < MAX_PENDING:
                self._started[request_id] = time_ms
            self._first_start = min(time_ms, self._first_start or time_ms)
            return
        duration = _duration_ms(record)
        start = self._started.pop(request_id, None)
        if start is not None:
            end = start + duration if duration is not None else max(start, time_ms)
            self._finish(request_id, start, end)
        elif request_id not in self._reported and len(self._reported) < MAX_PENDING:
            self._reported[request_id] = (time_ms - (duration or 0.0), time_ms)
            self._ended(time_ms)

    def _ended(self, end: float) -> None:
        self._last_end = end if self._last_end is None else max(self._last_end, end)

    def _finish(self, request_id: str, start: float, end: float) -> None:
        self._ended(end)
        self._finished.append((start, end))
        self._finished_count += 1
        self._done[request_id] = None
        if len(self._done) > RECENT_DONE:
            del self._done[next(iter(self._done))]
        if len(self._finished) >= COMPACT_AT:
            self._most_in_flight = max(self._most_in_flight, most_in_flight(self._intervals()))
            cutoff = self._newest - HORIZON_MS
            self._finished = [interval for interval in self._finished if interval[1] > cutoff]

    def _intervals(self) -> list[tuple[float, float]]:
        """Every invocation still held: finished, started only (open), reported only."""
        forever = float("inf")
        return [
            *self._finished,
            *((start, forever) for start in self._started.values()),
            *self._reported.values(),
        ]

    def complete(self) -> bool:
        """Whether nothing is visibly on its way: the init (or restore) reported, and every
        invocation that started has its report."""
        reported = self.init_status is not None or self.restore_duration_ms is not None
        return reported and not self._started

    def facts(
        self, *, init_time_ms: float, prompt_threshold_ms: float, now_ms: float | None = None
    ) -> dict[str, object]:
        """The record's fields this account knows (``environment_record`` names), none guessed.

        ``init_time_ms`` (epoch ms) is when the environment's life started, for the time to the
        first invocation; the threshold classifies it as ``schema.FIRST_INVOKE_CLASSES``.
        ``now_ms`` (epoch ms, the shutdown): where invocations are counted here, the idle time is
        from the last invocation's end, when every invocation that started has reported.
        """
        locked = self._lock.acquire(True, FACTS_LOCK_WAIT)
        try:
            return self._facts(init_time_ms, prompt_threshold_ms, now_ms)
        finally:
            if locked:
                self._lock.release()

    def _facts(
        self, init_time_ms: float, prompt_threshold_ms: float, now_ms: float | None
    ) -> dict[str, object]:
        known: dict[str, object] = {
            fields.RUNTIME_VERSION: self.runtime_version,
            fields.INIT_PHASE: self.init_phase,
            fields.INIT_STATUS: self.init_status,
            fields.INIT_ERROR_TYPE: self.init_error_type,
            fields.INIT_DURATION_MS: self.init_duration_ms,
            fields.RESTORE_DURATION_MS: self.restore_duration_ms,
        }
        if self.count_invocations and self.events:
            invocations = self._finished_count + len(self._started) + len(self._reported)
            known[fields.INVOCATIONS] = invocations
            first = self._first_start
            if first is None and self._reported:
                first = min(start for start, _ in self._reported.values())
            if invocations == 0:
                known[fields.FIRST_INVOKE] = schema.FIRST_INVOKE_NEVER
            elif first is not None:
                waited = max(0.0, round(first - init_time_ms, 3))
                known[fields.TIME_TO_FIRST_INVOKE_MS] = waited
                prompt = waited <= prompt_threshold_ms
                known[fields.FIRST_INVOKE] = (
                    schema.FIRST_INVOKE_PROMPT if prompt else schema.FIRST_INVOKE_DELAYED
                )
            known[fields.MAX_CONCURRENT_INVOCATIONS] = max(
                self._most_in_flight, most_in_flight(self._intervals())
            )
            # An invocation still open has no end yet: then the idle time is not known here.
            if now_ms is not None and self._last_end is not None and not self._started:
                known[fields.IDLE_MS] = max(0.0, round(now_ms - self._last_end, 3))
        return {name: fact for name, fact in known.items() if fact is not None}
