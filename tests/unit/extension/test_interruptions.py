"""SIGTERM against blocking waits: the race between checking ``requested`` and blocking is closed.

Each test fires the SIGTERM handler at one exact point (from a hook the code under test calls at
that point), so the race is exercised deterministically instead of by timing.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from concurrency_observer import schema
from concurrency_observer.extension.config import Config
from concurrency_observer.extension.event_loop import _Loop
from concurrency_observer.extension.events import InvokeEvent, ShutdownEvent, UnknownEvent
from concurrency_observer.extension.extensions_api import ExtensionsApiError
from concurrency_observer.extension.interruptions import Interruptions, Terminated
from concurrency_observer.extension.log import Logger
from concurrency_observer.extension.records import Record
from concurrency_observer.extension.session import Session
from concurrency_observer.extension.sinks import DeliveryResult

SIGTERM = 15
Outcome = InvokeEvent | ShutdownEvent | UnknownEvent | Exception


class Blocked(BaseException):
    """Raised where the code would block for good (not an Exception: no catch-all swallows it)."""


class KeptSink:
    """A sink that keeps the records it is given."""

    name = "kept"
    may_block = False

    def __init__(self) -> None:
        self.records: list[Record] = []

    def deliver(self, records: Sequence[Record], deadline: float) -> DeliveryResult:
        self.records.extend(records)
        return DeliveryResult(tuple(records))


class SignalledBeforeTheCheck(Interruptions):
    """SIGTERM lands after ``interruptible`` is set, just before ``requested`` is read."""

    def __init__(self) -> None:
        super().__init__()
        self.fired = False

    @property
    def requested(self) -> bool:
        if self.interruptible and not self.fired:
            self.fired = True
            self.on_sigterm(SIGTERM, None)
        return self._requested

    @requested.setter
    def requested(self, flag: bool) -> None:
        self._requested = flag


def test_sigterm_before_the_wait_is_seen_without_blocking() -> None:
    """A SIGTERM that came while not interruptible: wait() raises before blocking."""
    interruptions = Interruptions()
    interruptions.on_sigterm(SIGTERM, None)

    def block() -> None:
        raise Blocked

    with pytest.raises(Terminated):
        interruptions.wait(block)
    assert not interruptions.interruptible


def test_sigterm_between_flag_and_check_interrupts() -> None:
    """A SIGTERM right after the flag is set raises at once: the block is never reached."""
    interruptions = SignalledBeforeTheCheck()

    def block() -> None:
        raise Blocked

    with pytest.raises(Terminated):
        interruptions.wait(block)
    assert interruptions.fired


def test_sigterm_between_check_and_block_interrupts() -> None:
    """A SIGTERM after the check, as the wait begins, raises instead of only flagging."""
    interruptions = Interruptions()

    def block() -> None:
        interruptions.on_sigterm(SIGTERM, None)  # the signal lands here
        raise Blocked  # where /event/next would block with no timeout

    with pytest.raises(Terminated):
        interruptions.wait(block)


class SignallingLog:
    """Log lines; fires SIGTERM when a line containing ``cue`` is written."""

    def __init__(self, interruptions: Interruptions, cue: str) -> None:
        self.interruptions = interruptions
        self.cue = cue
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        if self.cue in line:
            self.interruptions.on_sigterm(SIGTERM, None)


class ScriptedRegistration:
    """``next_event`` plays ``outcomes`` (an exception is raised), then would block for good."""

    def __init__(self, outcomes: list[Outcome]) -> None:
        self.outcomes = outcomes
        self.calls = 0

    def next_event(self) -> InvokeEvent | ShutdownEvent | UnknownEvent:
        self.calls += 1
        if not self.outcomes:
            raise Blocked
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def serve(
    registration: ScriptedRegistration, cue: str
) -> tuple[int, KeptSink, list[float], ScriptedRegistration]:
    """The event loop with SIGTERM fired when the log line ``cue`` is written."""
    interruptions = Interruptions()
    log = SignallingLog(interruptions, cue)
    config, _ = Config.from_environ(
        {"AWS_LAMBDA_FUNCTION_NAME": "fn", "CONCURRENCY_OBSERVER_METRICS": "full"}
    )
    sink = KeptSink()
    session = Session(
        config,
        Logger("DEBUG", log),
        started_wall=1700000000.0,
        started_mono=100.0,
        clock=lambda: 101.0,
        wall_clock=lambda: 1700000001.0,
    )
    session.start(config.events)
    assert session.lifecycle is not None
    session.lifecycle.sink = sink
    sleeps: list[float] = []
    loop = _Loop(None, "x", session.log, interruptions, session=session, sleep=sleeps.append)
    loop.registered = registration  # type: ignore[assignment]
    code = loop.serve_events()
    return code, sink, sleeps, registration


def shutdown_reasons(sink: KeptSink) -> list[str]:
    """The ShutdownReason of each shutdown record delivered."""
    return [
        dict(r.dimensions)[schema.SHUTDOWN_REASON] for r in sink.records if r.kind == "shutdown"
    ]


def test_sigterm_after_the_loop_check_never_blocks_in_next() -> None:
    """SIGTERM between the loop's check and /event/next: the shutdown record, no poll."""
    code, sink, _sleeps, registration = serve(ScriptedRegistration([]), "Waiting for event")
    assert code == 0
    assert registration.calls == 0
    assert shutdown_reasons(sink) == ["sigterm"]


def test_sigterm_before_a_backoff_never_sleeps() -> None:
    """SIGTERM between a failed /event/next and its backoff sleep: no sleep, shutdown record."""
    failure = ExtensionsApiError("http://127.0.0.1:1/next", 500, "boom")
    code, sink, sleeps, registration = serve(ScriptedRegistration([failure]), "/event/next failed")
    assert code == 0
    assert registration.calls == 1
    assert sleeps == []
    assert shutdown_reasons(sink) == ["sigterm"]
