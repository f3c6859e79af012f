"""The platform's own account of the environment, from the Telemetry API's ``platform`` events.

Pure and defensive: ``PlatformAccount.observe_batch`` takes the body of one delivery (a JSON array
of events) as Lambda posts it, ignores what it cannot read (counting it), and keeps only what the
environment record needs (``environment_record``'s names):

- ``platform.initStart``: ``runtimeVersion``, ``phase``;
- ``platform.initReport``: ``status``, ``errorType``, ``phase``, ``metrics.durationMs`` (one per
  phase; a re-init after a failure reports again, with phase ``invoke``, and that one wins);
- ``platform.restoreReport`` (SnapStart): ``metrics.durationMs``;
- when the extension cannot count INVOKE events itself (Lambda Managed Instances, or registered
  for SHUTDOWN alone): ``platform.start`` and ``platform.report`` by ``requestId``. On LMI those
  arrive out of order across concurrent invocations and there is no ``platform.runtimeDone``,
  so each invocation is an interval from its start's ``time`` to that plus the report's
  ``durationMs`` (or the report's ``time``), whichever of the two events comes first.

Work and memory stay bounded whatever the rate and however long the environment lives. The most
invocations in flight at once is a sweep over their edges (a start +1, an end -1) kept in a heap
as they become known: an edge is swept once it is ``SETTLE_AFTER_MS`` behind the newest event
(events come within the subscription's buffering timeout of each other, far less), or sooner when
more than ``MAX_HELD_EDGES`` are held. That is O(log n) per event and never a re-sort; an edge
that comes later than its time was swept counts from the sweep's position (a bounded error, in
a case that does not happen with Lambda's deliveries). Pending invocations (one event of two) are
at most ``MAX_PENDING``.

The platform posts without authentication: any local process that finds the port can post too.
Nothing can prove an event genuine; what is checked is that it is plausible and consistent, and
what is refused is counted (``refused``, on the shutdown's INFO line):

- a ``platform.report`` must match a ``platform.start`` of the same ``requestId`` (arriving within
  ``REPORT_WAIT_MS`` of it, in either order); one that never does is not an invocation;
- one ``initStart`` and one ``initReport`` per phase (``init``, then ``invoke`` for a re-init after
  a failure), one ``restoreReport``: a second one is refused, the first stands;
- durations within Lambda's limits (``MAX_PHASE_MS``: 15 minutes, the longest init, with
  provisioned concurrency or SnapStart, and the longest invoke); an invocation started and not
  reported after that long is no longer open.

A forger that posts consistent start/report pairs within those limits is counted: the limit of
what an unauthenticated channel allows (docs/design.md, "The platform's own account").

The listener's thread calls ``observe_batch``, the main thread ``facts`` at SHUTDOWN: a lock
keeps the two apart, and ``facts`` never waits for it long (it uses what has arrived).
"""

from __future__ import annotations

import _thread
from _heapq import heappop, heappush

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

SETTLE_AFTER_MS = 10_000.0  # an edge this far behind the newest event is swept
MAX_HELD_EDGES = 20_000  # edges held unswept at most (about 2 MB), whatever the rate
MAX_PENDING = 10_000  # invocations with one event of two, at most (a lost event must not grow it)
# Lambda's longest init (provisioned concurrency, SnapStart, a re-init under the function's
# timeout) and longest invoke (the timeout's maximum): 15 minutes. Longer is not from Lambda.
MAX_PHASE_MS = 900_000.0
REPORT_WAIT_MS = 60_000.0  # a report waits this long (event time) for its start, then is refused
INIT_PHASES = ("init", "invoke")
MAX_REQUEST_ID = 128  # characters; Lambda's are 36
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


def _implausible(duration: float | None) -> bool:
    """Whether a duration is longer than any phase Lambda runs (``MAX_PHASE_MS``)."""
    return duration is not None and duration > MAX_PHASE_MS


def _text(raw: object) -> str | None:
    if not isinstance(raw, str) or not raw:
        return None
    return fields.cut_text(raw)


class ConcurrencySweep:
    """The most intervals open at once, from their edges given in about the order of time.

    An edge goes into a heap; ``settle(before)`` sweeps the edges earlier than ``before``, and an
    edge given beyond ``MAX_HELD_EDGES`` sweeps the oldest, in time order, keeping the running
    count and its peak. An edge given for a time already swept counts from the sweep's position.
    O(log n) per edge.
    """

    def __init__(self) -> None:
        self._edges: list[tuple[float, int]] = []  # (time, +1 start | -1 end): -1 sorts first
        self._swept_to = float("-inf")
        self._running = 0
        self._peak = 0

    def edge(self, time_ms: float, step: int) -> None:
        """A start (``step`` +1) or an end (-1) at ``time_ms``."""
        heappush(self._edges, (max(time_ms, self._swept_to), step))
        if len(self._edges) > MAX_HELD_EDGES:
            self._sweep_one()

    def settle(self, before: float) -> None:
        """Sweep every edge earlier than ``before``."""
        edges = self._edges
        while edges and edges[0][0] < before:
            self._sweep_one()

    def _sweep_one(self) -> None:
        time_ms, step = heappop(self._edges)
        self._swept_to = time_ms
        self._running += step
        self._peak = max(self._peak, self._running)

    def held(self) -> int:
        """Edges not swept yet."""
        return len(self._edges)

    def peak(self) -> int:
        """The most open at once, over everything given (the held edges sorted once, not swept)."""
        running, peak = self._running, self._peak
        for _, step in sorted(self._edges):
            running += step
            peak = max(peak, running)
        return peak


class PlatformAccount:
    """What the Telemetry API told about this environment; ``facts`` gives the record's fields."""

    def __init__(self, *, count_invocations: bool) -> None:
        self.count_invocations = count_invocations
        self.events = 0  # events read
        self.malformed = 0  # deliveries or events that could not be read
        self.refused = 0  # events read and refused as implausible (see the module's docstring)
        self._phases_started: set[str] = set()
        self._phases_reported: set[str] = set()
        self.runtime_version: str | None = None
        self.init_phase: str | None = None
        self.init_status: str | None = None
        self.init_error_type: str | None = None
        self.init_duration_ms: float | None = None
        self.restore_duration_ms: float | None = None
        # Invocations (counted only when the extension cannot count INVOKE itself).
        self._started: dict[str, float] = {}  # requestId: start, report not in yet
        # requestId: (the report's time, its duration), its start not in yet
        self._reported: dict[str, tuple[float, float | None]] = {}
        self._sweep = ConcurrencySweep()
        self._finished_count = 0
        self._done: dict[str, None] = {}  # the latest finished requestIds, oldest first
        self._first_start: float | None = None
        self._last_end: float | None = None  # the latest end of an invocation, epoch ms
        self._newest = 0.0
        self._lock = _thread.allocate_lock()

    def observe_batch(self, body: bytes) -> int:
        """Read one delivery (a JSON array of events); the events read in it. Never raises."""
        if not self.count_invocations and not any(mark in body for mark in INIT_MARKERS):
            return 0
        # Imported at the first delivery (json costs about 7 ms): not on the init path, where
        # the main thread works toward its first /event/next.
        import json  # noqa: PLC0415

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
            if self._first_of_phase(record, self._phases_started):
                self.runtime_version = _text(record.get("runtimeVersion")) or self.runtime_version
                self.init_phase = _text(record.get("phase")) or self.init_phase
        elif kind == INIT_REPORT:
            duration = _duration_ms(record)
            if _implausible(duration):
                self.refused += 1
                return
            superseded = "invoke" in self._phases_reported  # the re-init's, delivered first
            if self._first_of_phase(record, self._phases_reported) and not superseded:
                self.init_status = _text(record.get("status"))
                self.init_phase = _text(record.get("phase")) or self.init_phase
                error_type = _text(record.get("errorType"))
                self.init_error_type = error_type if self.init_status != "success" else None
                self.init_duration_ms = duration
        elif kind == RESTORE_REPORT:
            duration = _duration_ms(record)
            if _implausible(duration) or self.restore_duration_ms is not None:
                self.refused += 1
                return
            self.restore_duration_ms = duration
        elif self.count_invocations and kind in (START, REPORT):
            self._observe_invocation(kind, event, record)

    def _first_of_phase(self, record: dict[str, Any], seen: set[str]) -> bool:
        """Whether the event is the first of its kind for its phase (``init`` when it names
        none); a second one, or a phase Lambda does not have, is counted as refused."""
        phase = record.get("phase", "init")
        if not isinstance(phase, str) or phase not in INIT_PHASES or phase in seen:
            self.refused += 1
            return False
        seen.add(phase)
        return True

    def _observe_invocation(self, kind: str, event: dict[str, Any], record: dict[str, Any]) -> None:
        request_id = record.get("requestId")
        time_ms = parse_time_ms(event.get("time"))
        if not isinstance(request_id, str) or not request_id or time_ms is None:
            self.malformed += 1
            return
        if len(request_id) > MAX_REQUEST_ID:
            self.refused += 1
            return
        if request_id in self._done:
            return  # delivered twice
        if time_ms > self._newest:
            self._newest = time_ms
            self._expire()
        if kind == START:
            self._observe_start(request_id, time_ms)
        else:
            self._observe_report(request_id, time_ms, _duration_ms(record))

    def _observe_start(self, request_id: str, time_ms: float) -> None:
        if request_id in self._started:
            return  # delivered twice
        reported = self._reported.pop(request_id, None)
        if reported is not None:  # the report came first
            report_time, duration = reported
            end = time_ms + duration if duration is not None else max(time_ms, report_time)
            self._finish(request_id, time_ms, end)
        elif len(self._started) < MAX_PENDING:
            self._started[request_id] = time_ms
            self._sweep.edge(time_ms, 1)
            self._first_start = min(time_ms, self._first_start or time_ms)
        else:
            self.refused += 1

    def _observe_report(self, request_id: str, time_ms: float, duration: float | None) -> None:
        if _implausible(duration):
            self.refused += 1
            return
        start = self._started.pop(request_id, None)
        if start is not None:
            end = start + duration if duration is not None else max(start, time_ms)
            if end - start > MAX_PHASE_MS:  # no duration, and reported too late to be one
                self._sweep.edge(start, -1)
                self.refused += 1
                return
            self._sweep.edge(end, -1)
            self._finished_count += 1
            self._remember(request_id)
            self._ended(end)
        elif request_id in self._reported:
            return  # delivered twice
        elif len(self._reported) < MAX_PENDING:
            self._reported[request_id] = (time_ms, duration)
        else:
            self.refused += 1

    def _expire(self) -> None:
        """Let go of what can no longer be genuine, oldest first, now that time has moved on
        (amortized O(1): each entry leaves once), and sweep what has settled."""
        newest = self._newest
        while self._started:
            request_id, start = next(iter(self._started.items()))
            if start >= newest - MAX_PHASE_MS - REPORT_WAIT_MS:
                break
            del self._started[request_id]  # open longer than any invoke: not an invocation
            self._sweep.edge(start, -1)
            self.refused += 1
        while self._reported:
            request_id, (report_time, _) = next(iter(self._reported.items()))
            if report_time >= newest - REPORT_WAIT_MS:
                break
            del self._reported[request_id]  # no start came for it
            self.refused += 1
        self._sweep.settle(newest - SETTLE_AFTER_MS)

    def _ended(self, end: float) -> None:
        self._last_end = end if self._last_end is None else max(self._last_end, end)

    def _remember(self, request_id: str) -> None:
        self._done[request_id] = None
        if len(self._done) > RECENT_DONE:
            del self._done[next(iter(self._done))]

    def _finish(self, request_id: str, start: float, end: float) -> None:
        """An invocation whose report came before its start, both in now."""
        if end - start > MAX_PHASE_MS:
            self.refused += 1
            return
        self._sweep.edge(start, 1)
        self._sweep.edge(end, -1)
        self._first_start = min(start, self._first_start or start)
        self._finished_count += 1
        self._remember(request_id)
        self._ended(end)

    def unmatched_reports(self) -> int:
        """Reports still waiting for their start (refused if none comes)."""
        return len(self._reported)

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
            invocations = self._finished_count + len(self._started)
            known[fields.INVOCATIONS] = invocations
            first = self._first_start
            if invocations == 0:
                known[fields.FIRST_INVOKE] = schema.FIRST_INVOKE_NEVER
            elif first is not None:
                waited = max(0.0, round(first - init_time_ms, 3))
                known[fields.TIME_TO_FIRST_INVOKE_MS] = waited
                prompt = waited <= prompt_threshold_ms
                known[fields.FIRST_INVOKE] = (
                    schema.FIRST_INVOKE_PROMPT if prompt else schema.FIRST_INVOKE_DELAYED
                )
            known[fields.MAX_CONCURRENT_INVOCATIONS] = self._sweep.peak()
            # An invocation still open has no end yet: then the idle time is not known here.
            if now_ms is not None and self._last_end is not None and not self._started:
                known[fields.IDLE_MS] = max(0.0, round(now_ms - self._last_end, 3))
        return {name: fact for name, fact in known.items() if fact is not None}
