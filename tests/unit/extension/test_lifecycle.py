"""The lifecycle in process: exactly-once records, pending init, event loop and its failures."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from concurrency_observer import schema
from concurrency_observer.extension.config import Config
from concurrency_observer.extension.event_loop import run, shutdown_deadline
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
    config, _ = Config.from_environ(
        {"CONCURRENCY_OBSERVER_METRICS": "full", **(environ or {"AWS_LAMBDA_FUNCTION_NAME": "fn"})}
    )
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
    """The EMF documents in captured stdout (the environment record's line left out)."""
    documents = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [d for d in documents if "_aws" in d]


class StopAfter:
    """A sleep that records instead of sleeping, and fires SIGTERM at its ``limit``-th call."""

    def __init__(self, interruptions: Interruptions, limit: int = 1000) -> None:
        self.interruptions = interruptions
        self.limit = limit
        self.sleeps: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if len(self.sleeps) >= self.limit:
            self.interruptions.on_sigterm(15, None)


def run_against(
    fake: FakeExtensionsApi,
    environ: dict[str, str],
    sleeps: list[float] | None = None,
    *,
    sigterm_after_sleeps: int = 1000,
    fallback: str | None = None,
    execv: object = None,
) -> int:
    """run() in process against ``fake`` with the emf sink; sleeps recorded, not slept, and the
    ``sigterm_after_sleeps``-th one fires SIGTERM (so a loop that never ends is stopped)."""
    config, _ = Config.from_environ(
        {
            "CONCURRENCY_OBSERVER_SINK": "emf",
            "CONCURRENCY_OBSERVER_METRICS": "full",
            "AWS_LAMBDA_RUNTIME_API": fake.address,
            **environ,
        }
    )
    api = ExtensionsApi(fake.address)
    interruptions = Interruptions()
    sleep = StopAfter(interruptions, sigterm_after_sleeps)

    def refuse_exec(path: str, argv: list[str]) -> None:
        raise AssertionError("no hand-over expected")

    try:
        return run(
            config,
            api,
            "concurrency-observer",
            Logger("DEBUG", lambda line: None),
            interruptions,
            started_wall=time.time(),
            started_mono=time.monotonic(),
            sleep=sleep,
            fallback=fallback,
            execv=execv if callable(execv) else refuse_exec,
        )
    finally:
        api.close()
        if sleeps is not None:
            sleeps.extend(sleep.sleeps)


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


def test_run_never_gives_up_on_a_broken_api(capsys: pytest.CaptureFixture[str]) -> None:
    """/event/next failing 40 times: capped backoff, still polling, then SHUTDOWN: exit 0."""
    events: list[dict[str, object]] = [{"status": 500}] * 40
    events.append({"eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": 1})
    sleeps: list[float] = []
    with FakeExtensionsApi(events).running() as fake:
        assert run_against(fake, {}, sleeps) == 0
    assert len(sleeps) == 40
    assert sleeps == sorted(sleeps)
    assert sleeps[-1] == 5.0  # capped
    assert "/2020-01-01/extension/exit/error" not in fake.paths()
    documents = emf_lines(capsys.readouterr().out)
    assert documents[1][schema.SHUTDOWN_REASON] == "spindown"


def test_sigterm_ends_a_broken_api_with_the_shutdown_record(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """/event/next failing for ever: SIGTERM during a backoff still writes the shutdown record."""
    with FakeExtensionsApi([{"status": 503}] * 100).running() as fake:
        assert run_against(fake, {}, sigterm_after_sleeps=12) == 0
    documents = emf_lines(capsys.readouterr().out)
    assert [schema.ENVIRONMENT_INIT in d for d in documents] == [True, False]
    assert documents[1][schema.SHUTDOWN_REASON] == "sigterm"


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


def test_run_register_retried_until_it_works(capsys: pytest.CaptureFixture[str]) -> None:
    """Register refused 5 times (no fallback): retried with capped backoff, then served."""
    events: list[dict[str, object]] = [{"eventType": "SHUTDOWN", "deadlineMs": 1}]
    sleeps: list[float] = []
    with FakeExtensionsApi(events, register_status=500, register_failures=5).running() as fake:
        assert run_against(fake, {}, sleeps) == 0
    assert fake.paths().count("/2020-01-01/extension/register") == 6
    assert sleeps == [0.05, 0.1, 0.2, 0.4, 0.8]
    assert len(emf_lines(capsys.readouterr().out)) == 2


def test_run_register_refused_for_ever_waits_for_sigterm(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Register always refused, no fallback: no exit; SIGTERM writes init and shutdown records."""
    sleeps: list[float] = []
    with FakeExtensionsApi([], register_status=403).running() as fake:
        assert run_against(fake, {}, sleeps, sigterm_after_sleeps=20) == 0
    assert set(fake.paths()) == {"/2020-01-01/extension/register"}
    assert max(sleeps) == 1.0  # capped: init is waiting for every extension to register
    documents = emf_lines(capsys.readouterr().out)
    assert [schema.ENVIRONMENT_INIT in d for d in documents] == [True, False]
    assert documents[1][schema.SHUTDOWN_REASON] == "sigterm"


class HandedOver(BaseException):
    """What the test's execv raises in place of becoming another program."""


def test_run_register_refused_hands_over_to_the_fallback(tmp_path: Path) -> None:
    """Register refused 3 times: the process becomes fallback.sh (execv), with the name."""
    fallback = tmp_path / "fallback.sh"
    fallback.write_text("#!/bin/sh\n")
    fallback.chmod(0o755)
    calls: list[tuple[str, list[str]]] = []

    def execv(path: str, argv: list[str]) -> None:
        calls.append((path, argv))
        raise HandedOver

    with FakeExtensionsApi([], register_status=500).running() as fake, pytest.raises(HandedOver):
        run_against(fake, {}, fallback=str(fallback), execv=execv)
    assert calls == [(str(fallback), [str(fallback), "concurrency-observer"])]
    assert fake.paths().count("/2020-01-01/extension/register") == 4


def test_run_without_an_executable_fallback_keeps_registering(tmp_path: Path) -> None:
    """A fallback path that is missing is skipped: register goes on being retried."""
    events: list[dict[str, object]] = [{"eventType": "SHUTDOWN", "deadlineMs": 1}]
    failing = FakeExtensionsApi(events, register_status=500, register_failures=6)
    with failing.running() as fake:
        code = run_against(fake, {}, fallback=str(tmp_path / "missing.sh"))
    assert code == 0
    assert fake.paths().count("/2020-01-01/extension/register") == 7


def test_run_registers_for_configured_events() -> None:
    """CONCURRENCY_OBSERVER_EVENTS=SHUTDOWN registers for SHUTDOWN only."""
    events: list[dict[str, object]] = [{"eventType": "SHUTDOWN", "deadlineMs": 1}]
    with FakeExtensionsApi(events).running() as fake:
        assert run_against(fake, {"CONCURRENCY_OBSERVER_EVENTS": "SHUTDOWN"}) == 0
    assert json.loads(fake.requests[0].body) == {"events": ["SHUTDOWN"]}
