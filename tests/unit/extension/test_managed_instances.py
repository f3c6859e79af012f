"""Lambda Managed Instances: SHUTDOWN only, by init type or after INVOKE is refused."""

from __future__ import annotations

import json
import time

import pytest

from concurrency_observer import schema
from concurrency_observer.extension.config import Config
from concurrency_observer.extension.event_loop import events_to_register, run
from concurrency_observer.extension.events import ShutdownEvent, parse_next_event
from concurrency_observer.extension.extensions_api import ExtensionsApi
from concurrency_observer.extension.interruptions import Interruptions
from concurrency_observer.extension.log import Logger
from concurrency_observer.local import readback

from .fakes import FakeExtensionsApi

LMI = "lambda-managed-instances"


def shutdown_event() -> dict[str, object]:
    """A SHUTDOWN two seconds from now, as LMI words it."""
    deadline = int(time.time() * 1000) + 2000
    return {"eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": deadline}


def run_against(fake: FakeExtensionsApi, environ: dict[str, str]) -> int:
    """run() in process against ``fake`` with the emf sink."""
    config, _ = Config.from_environ(
        {
            "CONCURRENCY_OBSERVER_SINK": "emf",
            "CONCURRENCY_OBSERVER_METRICS": "full",
            "AWS_LAMBDA_RUNTIME_API": fake.address,
            **environ,
        }
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
            sleep=lambda seconds: None,
        )
    finally:
        api.close()


def registered_events(fake: FakeExtensionsApi) -> list[list[str]]:
    """The events of each register request, in order."""
    return [json.loads(r.body)["events"] for r in fake.requests if r.path.endswith("/register")]


def test_managed_instances_register_for_shutdown_only() -> None:
    """AWS_LAMBDA_INITIALIZATION_TYPE=lambda-managed-instances: SHUTDOWN only, whatever is set."""
    config, _ = Config.from_environ(
        {"AWS_LAMBDA_INITIALIZATION_TYPE": LMI, "CONCURRENCY_OBSERVER_EVENTS": "INVOKE,SHUTDOWN"}
    )
    assert events_to_register(config) == ("SHUTDOWN",)
    on_demand, _ = Config.from_environ({})
    assert events_to_register(on_demand) == ("INVOKE", "SHUTDOWN")


def test_lmi_records_carry_what_shutdown_only_knows(capsys: pytest.CaptureFixture[str]) -> None:
    """Under LMI: one register for SHUTDOWN, one init and one shutdown record, no invoke metrics."""
    with FakeExtensionsApi([shutdown_event()], refuse_invoke=True).running() as fake:
        assert run_against(fake, {"AWS_LAMBDA_INITIALIZATION_TYPE": LMI}) == 0
    assert registered_events(fake) == [["SHUTDOWN"]]
    init, shutdown = readback.emf_documents(capsys.readouterr().out)
    assert init[schema.INIT_TYPE] == LMI
    assert schema.ENVIRONMENT_INVOCATIONS not in shutdown
    assert schema.ENVIRONMENT_TIME_TO_FIRST_INVOKE not in shutdown
    assert shutdown[schema.SHUTDOWN_REASON] == "spindown"


def test_invoke_refused_registers_again_for_shutdown_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Any mode refusing INVOKE with InvalidEventType: a second register, for SHUTDOWN only."""
    with FakeExtensionsApi([shutdown_event()], refuse_invoke=True).running() as fake:
        assert run_against(fake, {}) == 0
    assert registered_events(fake) == [["INVOKE", "SHUTDOWN"], ["SHUTDOWN"]]
    documents = readback.emf_documents(capsys.readouterr().out)
    assert len(documents) == 2
    assert schema.ENVIRONMENT_INVOCATIONS not in documents[1]
    assert schema.ENVIRONMENT_IDLE_TIME in documents[1]


@pytest.mark.parametrize(("raw", "reason"), [("spindown", "spindown"), ("failure", "failure")])
def test_lmi_shutdown_reasons(raw: str, reason: str) -> None:
    """LMI's two shutdown reasons (spindown; failure for any other cause) reach the dimension."""
    body = json.dumps({"eventType": "SHUTDOWN", "shutdownReason": raw, "deadlineMs": 1})
    assert parse_next_event(body.encode()) == ShutdownEvent(reason, 1)
