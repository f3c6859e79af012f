"""The executor: pacing on an injected clock, and conflicts, throttling and the waiter (Stubber)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from concurrency_observer.rollout.attach_all import Target, plan_attach
from concurrency_observer.rollout.fleet_functions import FleetFunction
from concurrency_observer.rollout.fleet_update import (
    MAX_ATTEMPTS,
    FleetUpdater,
    Pacer,
    backoff,
    pacing_note,
)

ARN = "arn:aws:lambda:us-east-1:123456789012:function:fn"
TARGET = Target(
    "concurrency-observer",
    "arn:aws:lambda:us-east-1:123456789012:layer:concurrency-observer:1",
    1000,
)


class FakeClock:
    """A monotonic clock that only moves when slept on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_pacer_spaces_starts_evenly() -> None:
    """4 a minute: starts 15 s apart; work that took longer than that waits for nothing."""
    clock = FakeClock()
    pacer = Pacer(4, clock, clock.sleep)
    starts = []
    for work in (0.0, 5.0, 20.0, 1.0):
        pacer.wait_turn()
        starts.append(clock.now)
        clock.now += work
    assert starts == [100.0, 115.0, 130.0, 150.0]
    assert clock.sleeps == [15.0, 10.0]  # the 20 s of work left nothing to wait


def test_the_pacer_refuses_zero() -> None:
    """At least one a minute."""
    with pytest.raises(ValueError, match="at least 1"):
        Pacer(0)


def test_the_pacing_note_says_why() -> None:
    """The note names the cold starts, the pace and the time it will take."""
    note = pacing_note(10, 31)
    assert "one every 6 s" in note
    assert "about 3.0 min" in note
    assert "burst of cold starts" in note


def test_backoff_doubles_up_to_a_minute() -> None:
    """2, 4, 8 ... capped at 60."""
    assert [backoff(n) for n in (1, 2, 3, 7)] == [2.0, 4.0, 8.0, 60.0]


def _configuration(status: str = "Successful", layers: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "FunctionName": "fn",
        "FunctionArn": ARN,
        "Runtime": "python3.12",
        "PackageType": "Zip",
        "CodeSize": 100,
        "Layers": [{"Arn": arn, "CodeSize": 1} for arn in layers],
        "RevisionId": "r1",
        "LastUpdateStatus": status,
    }


def _conflict(code: str, status: int = 409) -> dict[str, Any]:
    return {
        "service_error_code": code,
        "service_message": f"{code} (stubbed)",
        "http_status_code": status,
    }


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    """A real botocore Lambda client whose answers come from a Stubber, in order."""
    session = botocore.session.get_session()
    lambda_client = session.create_client(
        "lambda", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    with Stubber(lambda_client) as stubber:
        yield lambda_client, stubber
        stubber.assert_no_pending_responses()


def _updater(lambda_client: Any, clock: FakeClock) -> FleetUpdater:
    return FleetUpdater(
        lambda_client,
        lambda function: plan_attach(function, TARGET),
        Pacer(60, clock, clock.sleep),
        sleep=clock.sleep,
        waiter_delay=0,
        waiter_max_attempts=5,
    )


def _step() -> Any:
    return plan_attach(FleetFunction.from_configuration(_configuration()), TARGET)


def test_a_conflict_is_waited_out_with_the_waiter_and_throttling_with_backoff(
    stubbed: tuple[Any, Stubber],
) -> None:
    """Conflict -> waiter sees InProgress then Successful; throttled -> 2 s backoff; attached."""
    lambda_client, stubber = stubbed
    stubber.add_response("get_function_configuration", _configuration(), {"FunctionName": ARN})
    stubber.add_client_error(
        "update_function_configuration", **_conflict("ResourceConflictException")
    )
    stubber.add_response("get_function", {"Configuration": _configuration("InProgress")})
    stubber.add_response("get_function", {"Configuration": _configuration("Successful")})
    stubber.add_response("get_function_configuration", _configuration())
    stubber.add_client_error(
        "update_function_configuration", **_conflict("TooManyRequestsException", 429)
    )
    stubber.add_response("get_function_configuration", _configuration())
    stubber.add_response("update_function_configuration", _configuration("InProgress"))
    stubber.add_response("get_function", {"Configuration": _configuration("Successful")})
    clock = FakeClock()
    (outcome,) = _updater(lambda_client, clock).run([_step()])
    assert outcome.result == "attached", outcome
    assert clock.sleeps == [backoff(2)]  # the second attempt was the throttled one


def test_a_failed_update_is_reported_with_lambdas_reason(stubbed: tuple[Any, Stubber]) -> None:
    """The waiter's Failed status ends as failed, with LastUpdateStatusReason."""
    lambda_client, stubber = stubbed
    stubber.add_response("get_function_configuration", _configuration())
    stubber.add_response("update_function_configuration", _configuration("InProgress"))
    failed = {**_configuration("Failed"), "LastUpdateStatusReason": "layer too big"}
    stubber.add_response("get_function", {"Configuration": failed})
    (outcome,) = _updater(lambda_client, FakeClock()).run([_step()])
    assert outcome.result == "failed"
    assert "layer too big" in outcome.detail


def test_endless_throttling_gives_up_after_the_attempts(stubbed: tuple[Any, Stubber]) -> None:
    """Throttled every time: failed after MAX_ATTEMPTS, with the backoffs slept on the clock."""
    lambda_client, stubber = stubbed
    for _ in range(MAX_ATTEMPTS):
        stubber.add_response("get_function_configuration", _configuration())
        stubber.add_client_error(
            "update_function_configuration", **_conflict("TooManyRequestsException", 429)
        )
    clock = FakeClock()
    (outcome,) = _updater(lambda_client, clock).run([_step()])
    assert outcome.result == "failed"
    assert f"gave up after {MAX_ATTEMPTS} attempts" in outcome.detail
    assert clock.sleeps == [backoff(n) for n in range(1, MAX_ATTEMPTS + 1)]


def test_another_error_fails_that_function_at_once(stubbed: tuple[Any, Stubber]) -> None:
    """InvalidParameterValueException (e.g. over 250 MB unzipped) is not retried."""
    lambda_client, stubber = stubbed
    stubber.add_response("get_function_configuration", _configuration())
    stubber.add_client_error(
        "update_function_configuration",
        service_error_code="InvalidParameterValueException",
        service_message="Function code combined with layers exceeds the maximum allowed size",
        http_status_code=400,
    )
    (outcome,) = _updater(lambda_client, FakeClock()).run([_step()])
    assert outcome.result == "failed"
    assert "exceeds the maximum allowed size" in outcome.detail


def test_a_function_attached_since_the_listing_is_unchanged(stubbed: tuple[Any, Stubber]) -> None:
    """The fresh read already has everything: no update is sent."""
    lambda_client, stubber = stubbed
    done = plan_attach(FleetFunction.from_configuration(_configuration()), TARGET)
    current = {
        **_configuration(layers=done.layers),
        "Environment": {"Variables": dict(done.variables)},
    }
    stubber.add_response("get_function_configuration", current)
    (outcome,) = _updater(lambda_client, FakeClock()).run([_step()])
    assert outcome.result == "unchanged"
