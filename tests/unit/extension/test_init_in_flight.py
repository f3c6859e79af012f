"""A slow CloudWatch at init: init waits only its budget; the init record is never sent twice."""

from __future__ import annotations

import time

from concurrency_observer.extension.config import Config, Credentials
from concurrency_observer.extension.lifecycle import Lifecycle
from concurrency_observer.extension.log import Logger
from concurrency_observer.extension.sinks.cloudwatch import CloudWatchSink

from .fakes import Scripted, ScriptedHttpServer

OK = Scripted(200, b"<PutMetricDataResponse/>")


def lifecycle_for(url: str, init_budget_ms: int) -> tuple[Lifecycle, list[str]]:
    """A real lifecycle and cloudwatch sink aimed at ``url``, with a captured log."""
    config, _warnings = Config.from_environ(
        {
            "AWS_LAMBDA_FUNCTION_NAME": "fn",
            "CONCURRENCY_OBSERVER_METRICS": "full",
            "CONCURRENCY_OBSERVER_INIT_BUDGET_MS": str(init_budget_ms),
        }
    )
    assert config.init_budget_ms == init_budget_ms
    sink = CloudWatchSink(
        namespace="Test/NS",
        endpoint_url=url,
        region="us-east-1",
        credentials=Credentials("AKIDEXAMPLE", "secret", None),
        connect_timeout=0.2,
    )
    lines: list[str] = []
    now_wall, now_mono = time.time(), time.monotonic()
    lifecycle = Lifecycle(
        config, sink, Logger("INFO", lines.append), started_wall=now_wall, started_mono=now_mono
    )
    return lifecycle, lines


def test_slow_init_delivery_is_awaited_at_shutdown_not_resent() -> None:
    """CloudWatch answering after the init budget: init goes on, the record lands exactly once."""
    # The answer comes 2 s late: init returning well before it (budget 0.2 s, plus a busy
    # machine's 1 s) shows it did not wait; shutdown's 6 s leave room to await it.
    with ScriptedHttpServer(
        [Scripted(200, b"<PutMetricDataResponse/>", delay=2.0), OK]
    ).running() as server:
        lifecycle, lines = lifecycle_for(server.url, init_budget_ms=200)
        # None: init went on without the answer (which takes 0.6 s) instead of waiting for it.
        assert lifecycle.deliver_init() is None
        assert "still in flight" in lines[0]

        result = lifecycle.shutdown("spindown", time.monotonic() + 6.0)

    assert result is not None
    assert [r.kind for r in result.delivered] == ["shutdown"]
    bodies = [request.body for request in server.requests]
    assert len(bodies) == 2
    assert sum(b"MetricName=EnvironmentInit&" in body for body in bodies) == 1
    assert b"MetricName=EnvironmentInit&" not in bodies[1]
    assert "lost" not in lines[-1]
    assert "in flight" not in lines[-1]


def test_failed_background_init_is_resent_at_shutdown() -> None:
    """An init delivery failing after the budget is re-sent with the shutdown record."""
    failing = Scripted(
        403, b"<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>"
    )
    with ScriptedHttpServer([Scripted(403, failing.body, delay=0.4), OK]).running() as server:
        lifecycle, _lines = lifecycle_for(server.url, init_budget_ms=100)
        assert lifecycle.deliver_init() is None
        # Shutdown awaits the in-flight delivery (half its time: 2 s, for a 403 due at 0.4 s),
        # then sends its failed record along with the shutdown record.
        result = lifecycle.shutdown("spindown", time.monotonic() + 4.0)

    assert result is not None
    assert sorted(r.kind for r in result.delivered) == ["init", "shutdown"]
    assert len(server.requests) == 2


def test_init_still_in_flight_at_shutdown_is_not_resent() -> None:
    """An init request outliving the shutdown budget is left alone, and the log says so."""
    with ScriptedHttpServer([Scripted(hang=True), OK]).running() as server:
        lifecycle, lines = lifecycle_for(server.url, init_budget_ms=100)
        assert lifecycle.deliver_init() is None
        started = time.monotonic()
        result = lifecycle.shutdown("spindown", time.monotonic() + 1.0)
        elapsed = time.monotonic() - started

    assert result is not None
    assert [r.kind for r in result.delivered] == ["shutdown"]
    assert elapsed < 10  # not the 30 s the init request hangs: room for a busy machine
    assert sum(b"MetricName=EnvironmentInit&" in r.body for r in server.requests) == 1
    assert "init record still in flight" in lines[-1]


def test_time_already_held_is_taken_from_the_init_budget() -> None:
    """A subscription that held init for the whole budget leaves no wait for the init record."""
    with ScriptedHttpServer([OK, OK]).running() as server:
        lifecycle, lines = lifecycle_for(server.url, init_budget_ms=400)
        # Held 0.4 s already (the Telemetry API's subscription): nothing of the budget is left,
        # so the record waits for the shutdown instead of holding init any longer.
        result = lifecycle.deliver_init(held=0.4)
        assert result is not None
        assert [r.kind for r in result.failed] == ["init"]
        assert "will retry at shutdown" in lines[0]
        assert server.requests == []

        done = lifecycle.shutdown("spindown", time.monotonic() + 4.0)

    assert done is not None
    assert sorted(r.kind for r in done.delivered) == ["init", "shutdown"]
