"""The harness's Telemetry API emulator: the RIE's lines become Lambda's platform events."""

from __future__ import annotations

import json
from pathlib import Path

from concurrency_observer.local.telemetry_emulator import (
    PlatformEvents,
    TelemetryEmulator,
    iso_time,
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
