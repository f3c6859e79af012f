"""The platform's account of an environment, from Telemetry API deliveries worked out by hand."""

from __future__ import annotations

import json

import pytest

from concurrency_observer.extension import platform_account
from concurrency_observer.extension.platform_account import (
    ConcurrencySweep,
    PlatformAccount,
    parse_time_ms,
)

T0 = "2026-01-15T10:00:00.000Z"
T0_MS = 1768471200000.0  # 2026-01-15T10:00:00Z, epoch ms


def at(offset_ms: int) -> str:
    """``T0`` plus ``offset_ms`` (under a minute) as an event's ``time``."""
    return f"2026-01-15T10:00:{offset_ms // 1000:02d}.{offset_ms % 1000:03d}Z"


def body(*events: object) -> bytes:
    """One delivery's body."""
    return json.dumps(list(events)).encode()


def start(request_id: str, offset_ms: int) -> dict[str, object]:
    """A ``platform.start`` at ``T0 + offset_ms``."""
    return {"time": at(offset_ms), "type": "platform.start", "record": {"requestId": request_id}}


def report(request_id: str, offset_ms: int, duration_ms: float) -> dict[str, object]:
    """A ``platform.report`` emitted at ``T0 + offset_ms`` for an invocation of ``duration_ms``."""
    record = {"requestId": request_id, "status": "success", "metrics": {"durationMs": duration_ms}}
    return {"time": at(offset_ms), "type": "platform.report", "record": record}


INIT_START = {
    "time": T0,
    "type": "platform.initStart",
    "record": {
        "initializationType": "on-demand",
        "phase": "init",
        "runtimeVersion": "python:3.12.v40",
    },
}
INIT_REPORT = {
    "time": at(250),
    "type": "platform.initReport",
    "record": {
        "initializationType": "on-demand",
        "phase": "init",
        "status": "success",
        "metrics": {"durationMs": 248.1234},
    },
}


def test_parse_time_ms() -> None:
    """The event's ISO time is epoch milliseconds; anything else is None."""
    assert parse_time_ms(T0) == T0_MS
    assert parse_time_ms("1970-01-01T00:00:00Z") == 0.0
    assert parse_time_ms("2024-02-29T23:59:59.5Z") == 1709251199500.0  # a leap day
    for bad in ("2026-01-15 10:00:00Z", "2026-01-15T10:00:00", "yesterday", 12, None, "x" * 50):
        assert parse_time_ms(bad) is None


def test_init_facts() -> None:
    """initStart and initReport give runtime version, phase, status and duration (3 decimals)."""
    account = PlatformAccount(count_invocations=False)
    account.observe_batch(body(INIT_START, INIT_REPORT))
    assert account.facts(init_time_ms=T0_MS, prompt_threshold_ms=10_000) == {
        "runtimeVersion": "python:3.12.v40",
        "initPhase": "init",
        "initStatus": "success",
        "initDurationMs": 248.123,
    }


def test_failed_reinit_last_report_wins() -> None:
    """A failed init then a re-init in the invoke phase: the last report's status and type."""
    failed = {
        "type": "platform.initReport",
        "time": at(100),
        "record": {
            "phase": "init",
            "status": "error",
            "errorType": "Runtime.ImportModuleError",
            "metrics": {"durationMs": 90},
        },
    }
    account = PlatformAccount(count_invocations=False)
    account.observe_batch(body(failed))
    first = account.facts(init_time_ms=T0_MS, prompt_threshold_ms=10_000)
    assert (first["initStatus"], first["initErrorType"], first["initPhase"]) == (
        "error",
        "Runtime.ImportModuleError",
        "init",
    )
    again = {
        "type": "platform.initReport",
        "time": at(900),
        "record": {"phase": "invoke", "status": "timeout", "errorType": "Sandbox.Timedout"},
    }
    account.observe_batch(body(again))
    facts = account.facts(init_time_ms=T0_MS, prompt_threshold_ms=10_000)
    assert (facts["initStatus"], facts["initErrorType"], facts["initPhase"]) == (
        "timeout",
        "Sandbox.Timedout",
        "invoke",
    )
    # Delivered the other way round, the re-init's report still wins.
    reversed_order = PlatformAccount(count_invocations=False)
    reversed_order.observe_batch(body(again, failed))
    facts = reversed_order.facts(init_time_ms=T0_MS, prompt_threshold_ms=10_000)
    assert (facts["initStatus"], facts["initPhase"]) == ("timeout", "invoke")


def test_restore_report() -> None:
    """platform.restoreReport gives the restore duration (SnapStart)."""
    account = PlatformAccount(count_invocations=False)
    restore = {
        "time": T0,
        "type": "platform.restoreReport",
        "record": {"status": "success", "metrics": {"durationMs": 312.5}},
    }
    account.observe_batch(body(restore))
    assert account.facts(init_time_ms=T0_MS, prompt_threshold_ms=1) == {"restoreDurationMs": 312.5}


def test_malformed_is_counted_and_ignored() -> None:
    """Bodies and events that cannot be read count as malformed and leave no field."""
    account = PlatformAccount(count_invocations=True)
    account.observe_batch(b"not json")
    account.observe_batch(b'{"type": "platform.initReport"}')  # not an array
    account.observe_batch(body(7, {"type": 3}, {"type": "platform.initReport", "record": []}))
    bad_report = {
        "type": "platform.initReport",
        "time": T0,
        "record": {"status": ["x"], "metrics": {"durationMs": "slow"}},
    }
    account.observe_batch(body(bad_report, start("r1", 0) | {"time": "later"}))
    assert account.malformed == 6
    assert account.facts(init_time_ms=T0_MS, prompt_threshold_ms=10_000) == {
        "invocations": 0,
        "firstInvoke": "never",
        "maxConcurrentInvocations": 0,
    }


def test_no_event_no_field() -> None:
    """Nothing arrived: no field at all, not even a zero count."""
    account = PlatformAccount(count_invocations=True)
    assert account.facts(init_time_ms=T0_MS, prompt_threshold_ms=10_000) == {}


def test_invocations_out_of_order() -> None:
    """Four invocations whose events arrive shuffled across deliveries, with no runtimeDone.

    a: 1000-1300, b: 1100-1200, c: 1250-1600 (report before start), d: 2000- (no report yet).
    At 1250 a and c are in flight (b ended at 1200): at most 2 at once. First start at 1000 ms
    after init, within the 10 s threshold: prompt.
    """
    account = PlatformAccount(count_invocations=True)
    account.observe_batch(body(start("b", 1100), report("c", 1600, 350)))
    account.observe_batch(body(start("a", 1000), report("b", 1200, 100), start("d", 2000)))
    account.observe_batch(body(start("c", 1250), report("a", 1300, 300)))
    account.observe_batch(body(start("a", 1000)))  # delivered twice
    assert account.facts(init_time_ms=T0_MS, prompt_threshold_ms=10_000) == {
        "invocations": 4,
        "timeToFirstInvokeMs": 1000.0,
        "firstInvoke": "prompt",
        "maxConcurrentInvocations": 2,
    }


def test_delayed_first_invoke() -> None:
    """A first start 30 s after init, threshold 10 s: delayed."""
    account = PlatformAccount(count_invocations=True)
    account.observe_batch(body(start("a", 30_000), report("a", 30_010, 10)))
    facts = account.facts(init_time_ms=T0_MS, prompt_threshold_ms=10_000)
    assert (facts["timeToFirstInvokeMs"], facts["firstInvoke"]) == (30_000.0, "delayed")


def test_invocation_events_ignored_when_not_counting() -> None:
    """Where INVOKE is counted by the extension, start/report bodies are not even parsed."""
    account = PlatformAccount(count_invocations=False)
    account.observe_batch(body(start("a", 0), report("a", 10, 10)))
    account.observe_batch(b"garbage that mentions no init event")
    assert (account.events, account.malformed) == (0, 0)
    assert account.facts(init_time_ms=T0_MS, prompt_threshold_ms=10_000) == {}


def test_memory_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Edges beyond the settle time, or beyond the cap, are swept and dropped, the peak kept."""
    monkeypatch.setattr(platform_account, "MAX_HELD_EDGES", 10)
    monkeypatch.setattr(platform_account, "SETTLE_AFTER_MS", 1000.0)
    account = PlatformAccount(count_invocations=True)
    # Three at once at the start, then 35 one after another, one every 1.5 s:
    account.observe_batch(
        body(*(start(f"p{i}", 0) for i in range(3)), *(report(f"p{i}", 5, 5) for i in range(3)))
    )
    for i in range(35):
        account.observe_batch(
            body(start(f"s{i}", 1000 + i * 1500), report(f"s{i}", 1010 + i * 1500, 10))
        )
    assert account._sweep.held() <= 10
    facts = account.facts(init_time_ms=T0_MS, prompt_threshold_ms=10_000)
    assert (facts["invocations"], facts["maxConcurrentInvocations"]) == (38, 3)


def stamp(offset_ms: float) -> str:
    """``T0`` plus any offset (hours allowed) as an event's ``time``."""
    total = round(offset_ms)
    hours, rest = divmod(total, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"2026-01-15T{10 + hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}Z"


def test_heavy_traffic_is_swept_within_the_edge_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """6,000 invocations of 100 ms, one a millisecond, in deliveries of 500 events shuffled
    within each, edges capped at 2,000: never more held, and the peak is exactly 100 at once."""
    monkeypatch.setattr(platform_account, "MAX_HELD_EDGES", 2000)
    account = PlatformAccount(count_invocations=True)
    events: list[dict[str, object]] = []
    for i in range(6000):
        events.append(
            {"time": stamp(i), "type": "platform.start", "record": {"requestId": f"r{i}"}}
        )
        done = {"requestId": f"r{i}", "metrics": {"durationMs": 100}}
        events.append({"time": stamp(i + 100), "type": "platform.report", "record": done})
    events.sort(key=lambda e: str(e["time"]))
    held = 0
    for first in range(0, len(events), 500):
        batch = events[first : first + 500]
        account.observe_batch(body(*batch[::-1]))  # out of order within the delivery
        held = max(held, account._sweep.held())
    assert held <= platform_account.MAX_HELD_EDGES
    facts = account.facts(init_time_ms=T0_MS, prompt_threshold_ms=10_000)
    assert (facts["invocations"], facts["maxConcurrentInvocations"]) == (6000, 100)
    assert account.refused == 0


def test_a_report_without_a_start_is_no_invocation() -> None:
    """Forged reports (no start ever): not counted, refused once the wait for a start is over."""
    account = PlatformAccount(count_invocations=True)
    account.observe_batch(body(start("a", 1000), report("a", 1300, 300)))
    account.observe_batch(body(*(report(f"forged{i}", 2000, 10) for i in range(500))))
    assert account.unmatched_reports() == 500
    later = {"time": stamp(2000 + platform_account.REPORT_WAIT_MS + 1), "type": "platform.start"}
    account.observe_batch(body(later | {"record": {"requestId": "b"}}))
    assert (account.unmatched_reports(), account.refused) == (0, 500)
    facts = account.facts(init_time_ms=T0_MS, prompt_threshold_ms=10_000)
    assert (facts["invocations"], facts["maxConcurrentInvocations"]) == (2, 1)


def test_implausible_durations_and_second_reports_are_refused() -> None:
    """An initReport of 999,999,999,999 ms, a second one for the init phase, an unknown phase, an
    invocation of 16 minutes: refused and counted; the genuine values stand."""
    account = PlatformAccount(count_invocations=True)
    forged_duration = INIT_REPORT | {
        "record": {"phase": "init", "status": "error", "metrics": {"durationMs": 999_999_999_999}}
    }
    second = INIT_REPORT | {
        "record": {"phase": "init", "status": "error", "errorType": "Forged.ByLocalProcess"}
    }
    odd_phase = INIT_REPORT | {"record": {"phase": "forged", "status": "error"}}
    account.observe_batch(body(INIT_START, INIT_START, forged_duration, INIT_REPORT))
    account.observe_batch(body(second, odd_phase, start("a", 1000), report("a", 1100, 960_000)))
    account.observe_batch(body(start("b", 2000), report("b", 2100, 100)))
    facts = account.facts(init_time_ms=T0_MS, prompt_threshold_ms=10_000)
    assert (facts["initStatus"], facts["initDurationMs"], facts["initPhase"]) == (
        "success",
        248.123,
        "init",
    )
    assert "initErrorType" not in facts
    assert account.refused == 5  # initStart twice, the forged duration, second, odd phase, a
    # a's report was refused: a stays a start without its report (open, counted), b finished
    assert (facts["invocations"], facts["maxConcurrentInvocations"]) == (2, 2)


def test_a_start_open_longer_than_any_invoke_is_let_go() -> None:
    """A start with no report after 15 minutes (plus the wait) is no longer open or counted."""
    account = PlatformAccount(count_invocations=True)
    account.observe_batch(body(start("stuck", 0)))
    limit = platform_account.MAX_PHASE_MS + platform_account.REPORT_WAIT_MS
    late = {"time": stamp(limit + 1000), "type": "platform.start", "record": {"requestId": "x"}}
    done = {"requestId": "x", "metrics": {"durationMs": 10}}
    account.observe_batch(
        body(late, {"time": stamp(limit + 1010), "type": "platform.report", "record": done})
    )
    facts = account.facts(init_time_ms=T0_MS, prompt_threshold_ms=10_000)
    assert (facts["invocations"], facts["maxConcurrentInvocations"]) == (1, 1)
    assert account.refused == 1
    assert account.complete() is False  # no init report in this account


def most_in_flight(intervals: list[tuple[float, float]]) -> int:
    """The most intervals ``[start, end)`` open at once, by a sweep of their edges sorted once."""
    sweep = ConcurrencySweep()
    for start_ms, end_ms in intervals:
        sweep.edge(start_ms, 1)
        sweep.edge(end_ms, -1)
    return sweep.peak()


def test_most_in_flight() -> None:
    """Back-to-back intervals do not overlap; nested ones do; swept early or late, the same."""
    assert most_in_flight([]) == 0
    assert most_in_flight([(0, 10), (10, 20)]) == 1
    assert most_in_flight([(0, 10), (2, 5), (3, 4), (9, 12)]) == 3
    sweep = ConcurrencySweep()
    for start_ms, end_ms in [(0, 10), (2, 5), (3, 4), (9, 12)]:
        sweep.edge(start_ms, 1)
        sweep.edge(end_ms, -1)
        sweep.settle(start_ms)  # sweeps what is behind as the edges come
    assert sweep.peak() == 3


def test_idle_time_from_the_last_invocations_end() -> None:
    """a: 1000-1300, b: 1100-1200; shutdown at 5000 ms: idle 3700 ms (not 5000 from init)."""
    account = PlatformAccount(count_invocations=True)
    account.observe_batch(body(start("a", 1000), start("b", 1100), report("b", 1200, 100)))
    account.observe_batch(body(report("a", 1300, 300)))
    facts = account.facts(init_time_ms=T0_MS, prompt_threshold_ms=10_000, now_ms=T0_MS + 5000)
    assert facts["idleMs"] == 3700.0
    # No shutdown moment given: no idle time (the lifecycle's own stands).
    assert "idleMs" not in account.facts(init_time_ms=T0_MS, prompt_threshold_ms=10_000)


def test_no_idle_time_while_an_invocation_is_open_or_none_ran() -> None:
    """An open start has no end; never invoked: no idle time here (the lifecycle's stands)."""
    open_one = PlatformAccount(count_invocations=True)
    open_one.observe_batch(body(start("a", 1000), report("a", 1300, 300), start("b", 2000)))
    shutdown = T0_MS + 5000
    facts = open_one.facts(init_time_ms=T0_MS, prompt_threshold_ms=10_000, now_ms=shutdown)
    assert "idleMs" not in facts
    never = PlatformAccount(count_invocations=True)
    never.observe_batch(body(INIT_START, INIT_REPORT))
    facts = never.facts(init_time_ms=T0_MS, prompt_threshold_ms=10_000, now_ms=shutdown)
    assert facts["firstInvoke"] == "never"
    assert "idleMs" not in facts
    reported_only = PlatformAccount(count_invocations=True)
    reported_only.observe_batch(body(report("c", 4000, 50)))  # its start never came
    facts = reported_only.facts(init_time_ms=T0_MS, prompt_threshold_ms=10_000, now_ms=shutdown)
    assert (facts["invocations"], facts["firstInvoke"]) == (0, "never")  # no start: no invocation
    assert "idleMs" not in facts
