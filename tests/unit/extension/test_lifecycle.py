"""The lifecycle in process: exactly-once records, pending init, event loop and its failures."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import pytest

from concurrency_observer import schema
from concurrency_observer.extension.config import Config
from concurrency_observer.extension.event_loop import MAX_NEXT_FAILURES, run, shutdown_deadline
from concurrency_observer.extension.extensions_api import ExtensionsApi
from concurrency_observer.extension.interruptions import Interruptions, Terminated
from concurrency_observer.extension.lifecycle import Lifecycle
from concurrency_observer.extension.log import Logger
from concurrency_observer.extension.records import Record
from concurrency_observer.extension.sinks import DeliveryResult

from .fakes import FakeExtensionsApi


class RecordingSink:
    """A sink that keeps what it is given and fails while ``failing`` is set."""

    name = "recording"
    may_block = False

    def __init__(self, failing: bool = False) -> None:
        self.failing = failing
        self.calls: list[tuple[list[Record], float]] = []

    def deliver(self, records: Sequence[Record], deadline: float) -> DeliveryResult:
        self.calls.append((list(records), deadline))
        if self.failing:
            return DeliveryResult((), tuple(records), "endpoint down")
        return DeliveryResult(tuple(records))


class Clock:
    """A settable clock."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_lifecycle(
    sink: RecordingSink, environ: dict[str, str] | None = None
) -> tuple[Lifecycle, Clock, list[str]]:
    """A lifecycle started at monotonic 100 / wall 1700000000 with a captured log."""
    config, _ = Config.from_environ(environ or {"AWS_LAMBDA_FUNCTION_NAME": "fn"})
    lines: list[str] = []
    clock = Clock(100.0)
    lifecycle = Lifecycle(
        config,
        sink,
        Logger("INFO", lines.append),
        started_wall=1700000000.0,
        started_mono=100.0,
        clock=clock,
        wall_clock=lambda: 1700000000.0 + clock.now - 100.0,
    )
    return lifecycle, clock, lines


def metric_values(record: Record) -> dict[str, float]:
    """The record's metric values by name."""
    return {m.name: m.value for m in record.metrics}


def test_init_then_shutdown_delivers_each_once() -> None:
    """A delivered init record is not sent again; the shutdown record carries the counts."""
    sink = RecordingSink()
    lifecycle, clock, lines = make_lifecycle(sink)
    lifecycle.deliver_init()
    assert sink.calls[0][1] == pytest.approx(100.4)  # the init budget, 400 ms
    clock.now = 102.0
    lifecycle.on_invoke()
    clock.now = 105.0
    lifecycle.on_invoke()
    clock.now = 110.0
    result = lifecycle.shutdown("spindown", 111.0)
    assert result is not None
    assert [r.kind for r in result.delivered] == ["shutdown"]
    shutdown = result.delivered[0]
    assert shutdown.timestamp == 1700000010.0
    assert metric_values(shutdown) == {
        schema.ENVIRONMENT_SHUTDOWN: 1,
        schema.ENVIRONMENT_LIFETIME: 10.0,
        schema.ENVIRONMENT_IDLE_TIME: 5.0,
        schema.ENVIRONMENT_INVOCATIONS: 2,
        schema.ENVIRONMENT_TIME_TO_FIRST_INVOKE: 2.0,
    }
    assert len(lines) == 2  # one line at init, one at shutdown


def test_failed_init_is_resent_at_shutdown_with_its_timestamp() -> None:
    """An init record that failed is delivered at shutdown, still stamped with the init time."""
    sink = RecordingSink(failing=True)
    lifecycle, clock, lines = make_lifecycle(sink)
    lifecycle.deliver_init()
    assert "retry at shutdown" in lines[0]
    sink.failing = False
    clock.now = 160.0
    result = lifecycle.shutdown("timeout", 161.0)
    assert result is not None
    assert [(r.kind, r.timestamp) for r in result.delivered] == [
        ("init", 1700000000.0),
        ("shutdown", 1700000060.0),
    ]
    assert "delivered init+shutdown" in lines[-1]


def test_shutdown_happens_once() -> None:
    """A second shutdown (SIGTERM after SHUTDOWN) does nothing: one shutdown record in all."""
    sink = RecordingSink()
    lifecycle, _clock, _lines = make_lifecycle(sink)
    assert lifecycle.shutdown("spindown", 101.0) is not None
    assert lifecycle.shutdown("sigterm", 101.0) is None
    shutdown_records = [r for records, _ in sink.calls for r in records if r.kind == "shutdown"]
    assert len(shutdown_records) == 1


def test_lost_records_are_reported_in_the_summary() -> None:
    """When delivery fails at shutdown too, the one summary line says what was lost and why."""
    sink = RecordingSink(failing=True)
    lifecycle, _clock, lines = make_lifecycle(sink)
    lifecycle.deliver_init()
    lifecycle.shutdown("spindown", 101.0)
    assert "lost init+shutdown (endpoint down)" in lines[-1]


def test_never_invoked() -> None:
    """No INVOKE: Invocations 0, idle time measured from init, no TimeToFirstInvoke."""
    lifecycle, clock, _ = make_lifecycle(RecordingSink())
    clock.now = 130.0
    result = lifecycle.shutdown("spindown", 131.0)
    assert result is not None
    values = metric_values(result.delivered[0])
    assert values[schema.ENVIRONMENT_INVOCATIONS] == 0
    assert values[schema.ENVIRONMENT_IDLE_TIME] == 30.0
    assert schema.ENVIRONMENT_TIME_TO_FIRST_INVOKE not in values


def test_shutdown_only_does_not_claim_invocations() -> None:
    """Registered for SHUTDOWN only: no Invocations metric at all."""
    environ = {"CONCURRENCY_OBSERVER_EVENTS": "SHUTDOWN"}
    lifecycle, _clock, lines = make_lifecycle(RecordingSink(), environ)
    result = lifecycle.shutdown("spindown", 101.0)
    assert result is not None
    assert schema.ENVIRONMENT_INVOCATIONS not in metric_values(result.delivered[0])
    assert "uncounted" in lines[-1]


def test_a_raising_sink_is_contained() -> None:
    """A sink bug becomes a failed delivery, not an exception."""

    class Broken(RecordingSink):
        def deliver(self, records: Sequence[Record], deadline: float) -> DeliveryResult:
            raise RuntimeError("bug")

    lifecycle, _clock, _lines = make_lifecycle(Broken())
    result = lifecycle.deliver_init()
    assert result is not None  # a sink that does not block is never left in flight
    assert result.failed == (lifecycle.init_record,)
    assert "RuntimeError: bug" in result.reason
    assert lifecycle.pending == [lifecycle.init_record]


def test_shutdown_deadline() -> None:
    """deadlineMs minus the margin, mapped to the monotonic clock; a fallback without one."""
    assert shutdown_deadline(
        1700000002000, 200, 500, mono_now=10.0, wall_now=1700000000.0
    ) == pytest.approx(11.8)
    assert shutdown_deadline(1699999999000, 200, 500, mono_now=10.0, wall_now=1700000000.0) == 10.0
    assert shutdown_deadline(None, 200, 500, mono_now=10.0, wall_now=0.0) == 10.5


def test_sigterm_interrupts_only_blocking_waits() -> None:
    """The handler raises Terminated only while interruptible; it always records the request."""
    interruptions = Interruptions()
    interruptions.on_sigterm(15, None)
    assert interruptions.requested
    interruptions.interruptible = True
    with pytest.raises(Terminated):
        interruptions.on_sigterm(15, None)


def emf_lines(text: str) -> list[dict[str, object]]:
    """The EMF documents in captured stdout."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def run_against(
    fake: FakeExtensionsApi, environ: dict[str, str], sleeps: list[float] | None = None
) -> int:
    """run() in process against ``fake`` with the emf sink; sleeps recorded, not slept."""
    config, _ = Config.from_environ(
        {"CONCURRENCY_OBSERVER_SINK": "emf", "AWS_LAMBDA_RUNTIME_API": fake.address, **environ}
    )
    api = ExtensionsApi(fake.address)
    try:
        return run(
            config,
            api,
            "concurrency-observer",
            Logger("DEBUG", lambda line: None),
            Interruptions(),
            started_wall=time.time(),
            started_mono=time.monotonic(),
            sleep=(sleeps.append if sleeps is not None else time.sleep),
        )
    finally:
        api.close()


def test_run_survives_malformed_and_unknown_events(capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed event and an unknown one are skipped; the INVOKEs still count."""
    events: list[dict[str, object]] = [
        {"eventType": "INVOKE", "deadlineMs": 1},
        {"raw": "<html>oops"},
        {"eventType": "RESTORE"},
        {"eventType": "INVOKE", "deadlineMs": 1},
        {
            "eventType": "SHUTDOWN",
            "shutdownReason": "spindown",
            "deadlineMs": int(time.time() * 1000) + 2000,
        },
    ]
    sleeps: list[float] = []
    with FakeExtensionsApi(events).running() as fake:
        assert run_against(fake, {}, sleeps) == 0
    documents = emf_lines(capsys.readouterr().out)
    assert [schema.ENVIRONMENT_INIT in d for d in documents] == [True, False]
    assert documents[1][schema.ENVIRONMENT_INVOCATIONS] == 2
    assert len(sleeps) == 1  # the malformed event backed off once, no busy loop


def test_run_backs_off_then_gives_up_on_a_broken_api(capsys: pytest.CaptureFixture[str]) -> None:
    """/event/next failing every time: growing backoff, then exit/error and exit code 1."""
    events: list[dict[str, object]] = [{"status": 500}] * MAX_NEXT_FAILURES
    sleeps: list[float] = []
    with FakeExtensionsApi(events).running() as fake:
        assert run_against(fake, {}, sleeps) == 1
    assert len(sleeps) == MAX_NEXT_FAILURES - 1
    assert sleeps == sorted(sleeps)
    assert sleeps[-1] <= 5.0
    assert fake.paths()[-1] == "/2020-01-01/extension/exit/error"
    documents = emf_lines(capsys.readouterr().out)
    assert len(documents) == 2  # the environment is going away: its shutdown is recorded


def test_run_recovers_after_transient_next_failures(capsys: pytest.CaptureFixture[str]) -> None:
    """Two failing /event/next calls, then events again: served normally, exit 0."""
    events: list[dict[str, object]] = [
        {"status": 500},
        {"status": 503},
        {"eventType": "INVOKE", "deadlineMs": 1},
        {
            "eventType": "SHUTDOWN",
            "shutdownReason": "spindown",
            "deadlineMs": int(time.time() * 1000) + 2000,
        },
    ]
    sleeps: list[float] = []
    with FakeExtensionsApi(events).running() as fake:
        assert run_against(fake, {}, sleeps) == 0
    assert sleeps == [0.05, 0.1]
    assert emf_lines(capsys.readouterr().out)[-1][schema.ENVIRONMENT_INVOCATIONS] == 1


def test_run_registration_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """Registration refused: exit code 1, no record, nothing after register."""
    with FakeExtensionsApi([], register_status=403).running() as fake:
        assert run_against(fake, {}) == 1
    assert fake.paths() == ["/2020-01-01/extension/register"]
    assert emf_lines(capsys.readouterr().out) == []


def test_run_registers_for_configured_events() -> None:
    """CONCURRENCY_OBSERVER_EVENTS=SHUTDOWN registers for SHUTDOWN only."""
    events: list[dict[str, object]] = [{"eventType": "SHUTDOWN", "deadlineMs": 1}]
    with FakeExtensionsApi(events).running() as fake:
        assert run_against(fake, {"CONCURRENCY_OBSERVER_EVENTS": "SHUTDOWN"}) == 0
    assert json.loads(fake.requests[0].body) == {"events": ["SHUTDOWN"]}
