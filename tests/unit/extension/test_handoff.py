"""The Python side of the hand-off: its arguments, its milestones, a loop that never registers."""

from __future__ import annotations

import json
import os
import time

import pytest

from concurrency_observer.extension.config import Config
from concurrency_observer.extension.event_loop import AbandonedHandOff, run
from concurrency_observer.extension.extensions_api import ExtensionsApi
from concurrency_observer.extension.handoff import (
    HandOff,
    HandOffError,
    Milestones,
    front_door_start,
    parse_handoff,
    register_fields,
)
from concurrency_observer.extension.interruptions import Interruptions
from concurrency_observer.extension.log import Logger

from .fakes import EXTENSION_ID, FakeExtensionsApi

BODY = '{"functionName":"orders","functionVersion":"$LATEST","handler":"app.handler"}'


def test_parse_handoff_reads_what_the_front_door_sends() -> None:
    """name, origin, --handoff FD ID EVENTS BODY: each field where the front door put it."""
    argv = ["bootstrap.py", "concurrency-observer", "lambda", "--handoff", "7", "id-1"]
    handoff = parse_handoff([*argv, "INVOKE,SHUTDOWN", BODY])
    assert handoff == HandOff("id-1", ("INVOKE", "SHUTDOWN"), BODY, 7)
    assert register_fields(handoff.register_body) == {
        "functionName": "orders",
        "functionVersion": "$LATEST",
        "handler": "app.handler",
    }
    assert parse_handoff(["bootstrap.py", "concurrency-observer", "lambda"]) is None
    shutdown_only = parse_handoff([*argv, "SHUTDOWN"])
    assert shutdown_only is not None
    assert shutdown_only.events == ("SHUTDOWN",)
    assert register_fields(shutdown_only.register_body) == {}


@pytest.mark.parametrize(
    "rest",
    [
        ["7", "id-1"],
        ["x", "id-1", "SHUTDOWN"],
        ["7", "", "SHUTDOWN"],
        ["7", "id\n", "SHUTDOWN"],
        ["7", "id-1", "INVOKE"],
        ["7", "i" * 300, "SHUTDOWN"],
    ],
)
def test_parse_handoff_refuses_what_is_not_a_handoff(rest: list[str]) -> None:
    """Missing fields, a descriptor that is no number, a bad id, no SHUTDOWN: HandOffError."""
    with pytest.raises(HandOffError):
        parse_handoff(["bootstrap.py", "concurrency-observer", "lambda", "--handoff", *rest])


def test_the_front_doors_start_is_the_environments() -> None:
    """STARTED_MS after the body moves the start back to the front door's, on both clocks; a
    value after Python's own start, too far before it, or not a number leaves Python's own."""
    argv = ["bootstrap.py", "concurrency-observer", "lambda", "--handoff", "3", "id-1", "SHUTDOWN"]
    own_wall, own_mono = 1_800_000_000.250, 500.0
    handoff = parse_handoff([*argv, BODY, "1800000000200"])
    assert handoff is not None
    assert handoff.started_ms == 1_800_000_000_200
    wall, mono = front_door_start(handoff, own_wall, own_mono)
    assert wall == pytest.approx(1_800_000_000.200)
    assert mono == pytest.approx(499.95)
    for raw in ("1800000000300", "1799999900000", "soon", ""):
        other = parse_handoff([*argv, BODY, raw])
        assert other is not None
        assert front_door_start(other, own_wall, own_mono) == (own_wall, own_mono)


@pytest.mark.parametrize("body", ["", "not json", "[1]", '{"functionName": 3}', "{" * 5000])
def test_register_fields_keep_strings_only(body: str) -> None:
    """A Register answer that is not a JSON object of strings gives no field, and no error."""
    assert register_fields(body) == {}


def test_milestones_are_lines_on_the_pipe_and_the_pipe_closes() -> None:
    """init, then loop; then the write end is closed: the reader sees end-of-file."""
    read_end, write_end = os.pipe()
    milestones = Milestones(write_end)
    milestones.init_is_ours()
    milestones.owning_the_loop()
    milestones.owning_the_loop()  # a second time writes nothing and raises nothing
    with os.fdopen(read_end, "rb") as reader:
        assert reader.read() == b"init\nloop\n"


def run_handed_off(fake: FakeExtensionsApi, milestone_fd: int, environ: dict[str, str]) -> int:
    """run() in process with a hand-off from the shell, against ``fake``."""
    config, _ = Config.from_environ(
        {"CONCURRENCY_OBSERVER_SINK": "emf", "AWS_LAMBDA_RUNTIME_API": fake.address, **environ}
    )
    api = ExtensionsApi(fake.address)
    handoff = HandOff(EXTENSION_ID, ("INVOKE", "SHUTDOWN"), "", milestone_fd)
    owned: list[bool] = []
    try:
        return run(
            config,
            api,
            "concurrency-observer",
            Logger("DEBUG", lambda line: None),
            Interruptions(),
            started_wall=time.time(),
            started_mono=time.monotonic(),
            sleep=lambda seconds: None,
            handoff=handoff,
            milestones=Milestones(milestone_fd),
            on_owning=lambda: owned.append(True),
        )
    finally:
        api.close()
        assert owned in ([], [True])


@pytest.mark.parametrize(
    ("init_type", "milestones"),
    [("on-demand", b"loop\n"), ("provisioned-concurrency", b"init\nloop\n")],
)
def test_a_handed_off_loop_never_registers(
    capsys: pytest.CaptureFixture[str], init_type: str, milestones: bytes
) -> None:
    """The shell's identifier polls /event/next; the record counts. ``init`` goes back only for
    an init record that has gone out (provisioned); on-demand it waits for shutdown, so only
    ``loop`` (were Python to end before it, the shell would write the init record)."""
    deadline = int((time.time() + 2) * 1000)
    events: list[dict[str, object]] = [
        {"eventType": "INVOKE", "requestId": "r"},
        {"eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": deadline},
    ]
    read_end, write_end = os.pipe()
    with FakeExtensionsApi(events).running() as fake:
        environ = {
            "CONCURRENCY_OBSERVER_TELEMETRY": "off",
            "AWS_LAMBDA_INITIALIZATION_TYPE": init_type,
        }
        assert run_handed_off(fake, write_end, environ) == 0
    with os.fdopen(read_end, "rb") as reader:
        assert reader.read() == milestones
    assert not any(r.path.endswith("/register") for r in fake.requests)
    assert {r.headers["Lambda-Extension-Identifier"] for r in fake.requests} == {EXTENSION_ID}
    (record,) = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if "environ" in line
    ]
    assert record["invocations"] == 1


def test_a_failure_before_the_loop_is_handed_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug before the first /event/next: AbandonedHandOff, nothing polled, no loop milestone."""
    from concurrency_observer.extension import session

    def broken(self: object, events: object) -> None:
        raise RuntimeError("broken")

    monkeypatch.setattr(session.Session, "start", broken)
    read_end, write_end = os.pipe()
    with FakeExtensionsApi([]).running() as fake, pytest.raises(AbandonedHandOff):
        run_handed_off(fake, write_end, {"CONCURRENCY_OBSERVER_TELEMETRY": "off"})
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        assert reader.read() == b""
    assert fake.requests == []
