"""The harness's Telemetry API emulator: the RIE's lines become Lambda's platform events."""

from __future__ import annotations

import json
from pathlib import Path

from concurrency_observer.local.telemetry_emulator import (
    PlatformEvents,
    TelemetryEmulator,
    iso_time,
    rie_time,
)

NOW = 1768471200.25  # 2026-01-15T10:00:00.250Z


def kinds_and_records(lines: list[str]) -> list[tuple[str, dict[str, object]]]:
    """Feed ``lines`` to one translator; every event's type and record."""
    events = PlatformEvents()
    return [(e["type"], e["record"]) for line in lines for e in events.feed(line, NOW)]


def test_iso_time() -> None:
    """Milliseconds and Z, as Lambda writes an event's time."""
    assert iso_time(NOW) == "2026-01-15T10:00:00.250Z"


def test_successful_init_and_an_invocation() -> None:
    """INIT START, RTDONE, REPORT, then START/REPORT of one request."""
    lines = [
        "02 Dec 2026 16:55:32,203 [INFO] (rapid) INIT START(type: on-demand, phase: init)",
        "02 Dec 2026 16:55:32,293 [INFO] (rapid) INIT RTDONE(status: success)",
        "02 Dec 2026 16:55:32,293 [INFO] (rapid) INIT REPORT(durationMs: 54.331000)",
        "START RequestId: 0ab70c3d-72e4-4c51-b1b3-5342ceee5da8 Version: $LATEST",
        "END RequestId: 0ab70c3d-72e4-4c51-b1b3-5342ceee5da8",
        "REPORT RequestId: 0ab70c3d-72e4-4c51-b1b3-5342ceee5da8\tDuration: 1.25 ms",
    ]
    request = "0ab70c3d-72e4-4c51-b1b3-5342ceee5da8"
    base = {"initializationType": "on-demand", "phase": "init"}
    assert kinds_and_records(lines) == [
        ("platform.initStart", base),
        ("platform.initRuntimeDone", {**base, "status": "success"}),
        ("platform.initReport", {**base, "status": "success", "metrics": {"durationMs": 54.331}}),
        ("platform.start", {"requestId": request, "version": "$LATEST"}),
        ("platform.runtimeDone", {"requestId": request, "status": "success"}),
        (
            "platform.report",
            {"requestId": request, "status": "success", "metrics": {"durationMs": 1.25}},
        ),
    ]


def test_failed_init_then_reinit() -> None:
    """The fatal error's type goes in the failed report; the re-init has phase invoke."""
    lines = [
        "x (rapid) INIT START(type: on-demand, phase: init)",
        "x (rapid) First fatal error stored in appctx: Runtime.ExitError",
        "x (rapid) INIT RTDONE(status: error)",
        "x (rapid) INIT REPORT(durationMs: 89.931000)",
        "x (rapid) INIT START(type: on-demand, phase: invoke)",
        "x (rapid) INIT RTDONE(status: success)",
        "x (rapid) INIT REPORT(durationMs: 10.5)",
    ]
    reports = [r for kind, r in kinds_and_records(lines) if kind == "platform.initReport"]
    assert reports == [
        {
            "initializationType": "on-demand",
            "phase": "init",
            "status": "error",
            "errorType": "Runtime.ExitError",
            "metrics": {"durationMs": 89.931},
        },
        {
            "initializationType": "on-demand",
            "phase": "invoke",
            "status": "success",
            "metrics": {"durationMs": 10.5},
        },
    ]


# A provisioned environment's init, held at the gate (function/handler.py) 62.592 ms after the
# RIE's INIT START, then what the RIE prints when it is let through or shut down a second later.
HELD_AT = 1796234254.007592  # 2026-12-02T17:57:34.007592Z
HELD_INIT = [
    "START RequestId: 2b86f212-c169-4714-9f15-8d7245ca3a40 Version: $LATEST",
    "02 Dec 2026 17:57:33,945 [INFO] (rapid) INIT START(type: on-demand, phase: init)",
    "02 Dec 2026 17:57:33,966 [INFO] (rapid) External agent concurrency-observer (id) registered",
    f"INIT HELD(at: {HELD_AT:.6f})",
]
RELEASED = [
    "02 Dec 2026 17:57:35,034 [INFO] (rapid) INIT RTDONE(status: success)",
    "02 Dec 2026 17:57:35,034 [INFO] (rapid) INIT REPORT(durationMs: 1089.067000)",
    "02 Dec 2026 17:57:35,034 [INFO] (rapid) INVOKE START(requestId: 2b86f212)",
    "END RequestId: 2b86f212-c169-4714-9f15-8d7245ca3a40",
    "REPORT RequestId: 2b86f212-c169-4714-9f15-8d7245ca3a40\tDuration: 1090.03 ms",
]
SHUT_DOWN_WHILE_HELD = [
    "02 Dec 2026 17:57:36,180 [INFO] (rapid) Received signal signal=terminated",
    "02 Dec 2026 17:57:36,180 [INFO] (rapid) INIT RTDONE(status: error)",
    "02 Dec 2026 17:57:36,180 [INFO] (rapid) INIT REPORT(durationMs: 1061.746000)",
    "02 Dec 2026 17:57:36,180 [ERROR] (rapid) Init failed error=errResetReceived InvokeID=",
]
HELD_REPORT = {
    "initializationType": "on-demand",
    "phase": "init",
    "status": "success",
    "metrics": {"durationMs": 62.592},
}


def init_events(lines: list[str]) -> list[tuple[str, str, dict[str, object]]]:
    """The init events of ``lines`` fed to one translator: time, type and record of each."""
    events = PlatformEvents()
    return [
        (e["time"], e["type"], e["record"])
        for line in lines
        for e in events.feed(line, NOW)
        if e["type"].startswith("platform.init")
    ]


def test_rie_time() -> None:
    """The RIE's stamp is UTC to the millisecond; a line without one has none."""
    assert rie_time("02 Dec 2026 17:57:33,945 [INFO] (rapid) INIT START(...)") == 1796234253.945
    assert rie_time("INIT HELD(at: 1.5)") is None
    assert rie_time("31 Feb 2026 17:57:33,945 [INFO] (rapid) x") is None


def test_held_init_reported_at_the_gate_then_released() -> None:
    """Held: the init succeeded at the gate, 62.592 ms after INIT START; the RIE's own report
    of it at the release (1,089 ms, the time held included) is dropped."""
    assert init_events(HELD_INIT + RELEASED) == [
        (
            "2026-12-02T17:57:33.945Z",
            "platform.initStart",
            {"initializationType": "on-demand", "phase": "init"},
        ),
        (
            "2026-12-02T17:57:34.007Z",
            "platform.initRuntimeDone",
            {"initializationType": "on-demand", "phase": "init", "status": "success"},
        ),
        ("2026-12-02T17:57:34.007Z", "platform.initReport", HELD_REPORT),
    ]


def test_held_init_shut_down_while_held_is_no_failed_init() -> None:
    """Shut down while held: the RIE's INIT RTDONE(error) and INIT REPORT are dropped, the init
    stays successful as reported at the gate."""
    reports = [
        r
        for _, kind, r in init_events(HELD_INIT + SHUT_DOWN_WHILE_HELD)
        if kind == "platform.initReport"
    ]
    assert reports == [HELD_REPORT]


def test_the_held_line_is_reported_once_and_the_next_init_normally() -> None:
    """A second held line adds nothing; the next INIT START (a new generation) is reported from
    the RIE's lines again, failed if it failed."""
    lines = [
        *HELD_INIT,
        f"INIT HELD(at: {HELD_AT + 1:.6f})",
        *SHUT_DOWN_WHILE_HELD,
        "02 Dec 2026 17:57:37,000 [INFO] (rapid) INIT START(type: on-demand, phase: invoke)",
        "02 Dec 2026 17:57:37,050 [INFO] (rapid) INIT RTDONE(status: error)",
        "02 Dec 2026 17:57:37,050 [INFO] (rapid) INIT REPORT(durationMs: 50.5)",
    ]
    reports = [r for _, kind, r in init_events(lines) if kind == "platform.initReport"]
    assert reports == [
        HELD_REPORT,
        {
            "initializationType": "on-demand",
            "phase": "invoke",
            "status": "error",
            "errorType": "Runtime.Unknown",
            "metrics": {"durationMs": 50.5},
        },
    ]


def test_a_held_line_outside_an_init_is_ignored() -> None:
    """No INIT START seen yet: there is no init to report."""
    assert PlatformEvents().feed(f"INIT HELD(at: {HELD_AT})", NOW) == []


def test_subscription_validated(tmp_path: Path) -> None:
    """Only a subscription Lambda would take is answered 200 (schema 2025-01-29, HTTP)."""
    emulator = TelemetryEmulator(tmp_path / "output.log")
    emulator.close()  # the server's socket; subscribe() needs none
    good = {
        "schemaVersion": "2025-01-29",
        "types": ["platform"],
        "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243"},
    }
    assert emulator.subscribe("/2022-07-01/telemetry", json.dumps(good).encode())[0] == 200
    for bad in (
        {**good, "schemaVersion": "2022-12-13"},
        {**good, "types": ["function"]},
        {**good, "destination": {"protocol": "TCP", "URI": "sandbox.localdomain:1"}},
        {"schemaVersion": "2025-01-29"},
    ):
        assert emulator.subscribe("/2022-07-01/telemetry", json.dumps(bad).encode())[0] == 400
    assert emulator.subscribe("/2022-07-01/telemetry", b"{")[0] == 400
    assert len(emulator.subscriptions) == 1
