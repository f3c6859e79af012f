"""Apply a fleet's steps one function at a time, paced, waiting out conflicts and throttling.

Why paced: every configuration update replaces all of that function's warm execution environments
(the next invokes are cold starts), so updating a whole fleet at once would be a burst of cold
starts everywhere at the same moment. ``Pacer`` starts at most ``max_per_minute`` updates a
minute; its clock and sleep are injected, so tests check the spacing without sleeping.

Each function is read again (GetFunctionConfiguration) and re-planned right before its update, so
a function changed since the listing is planned on what it is now, and the RevisionId read makes
Lambda refuse the update if it changes in between. ResourceConflictException (another update in
progress) is waited out with botocore's ``function_updated_v2`` waiter, TooManyRequestsException
with exponential backoff, PreconditionFailedException (the revision moved) by reading again; after
``MAX_ATTEMPTS`` the function is reported failed. After its update, each function is waited for
(the same waiter), so a failed update is reported with Lambda's reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from concurrency_observer.errors import AwsError
from concurrency_observer.rollout.fleet_functions import FleetFunction, read_function
from concurrency_observer.rollout.fleet_step import Action, Step
from concurrency_observer.rollout.rollout_errors import error_summary, redacted, secret_values

Result = Literal["attached", "upgraded", "detached", "unchanged", "skipped", "failed"]
RESULTS: Final[tuple[Result, ...]] = (
    "attached",
    "upgraded",
    "detached",
    "unchanged",
    "skipped",
    "failed",
)
_RESULT_OF: Final[dict[Action, Result]] = {
    "attach": "attached",
    "upgrade": "upgraded",
    "detach": "detached",
    "unchanged": "unchanged",
    "skip": "skipped",
}

DEFAULT_MAX_PER_MINUTE: Final = 10
MAX_ATTEMPTS: Final = 5
BACKOFF_BASE_SECONDS: Final = 2.0
BACKOFF_MAX_SECONDS: Final = 60.0
# botocore's function_updated_v2 polls GetFunction every second, 300 times by default.
WAITER_DELAY_SECONDS: Final = 1.0
WAITER_MAX_ATTEMPTS: Final = 300
UPDATE_WAITER: Final = "function_updated_v2"

Clock = Callable[[], float]
Sleep = Callable[[float], None]


def pacing_note(max_per_minute: int, updates: int) -> str:
    """The line that says how the updates are paced, how long it takes and why."""
    interval = 60.0 / max_per_minute
    minutes = max(0, updates - 1) * interval / 60
    return (
        f"pacing: at most {max_per_minute} updates a minute (one every {interval:.0f} s; "
        f"{updates} to do, about {minutes:.1f} min): each configuration update replaces all of "
        "that function's warm environments, so updating the fleet at once would be a burst of "
        "cold starts everywhere at the same moment (--max-per-minute changes the pace)"
    )


@dataclass
class Pacer:
    """Lets an update start at most ``max_per_minute`` times a minute, evenly spaced."""

    max_per_minute: int
    clock: Clock = time.monotonic
    sleep: Sleep = time.sleep
    _last_start: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.max_per_minute < 1:
            raise ValueError("max_per_minute must be at least 1")

    @property
    def interval(self) -> float:
        """Seconds between two starts."""
        return 60.0 / self.max_per_minute

    def wait_turn(self) -> None:
        """Sleep until the next start is allowed, then take it."""
        now = self.clock()
        if self._last_start is not None:
            due = self._last_start + self.interval
            if now < due:
                self.sleep(due - now)
                now = self.clock()
        self._last_start = now


@dataclass(frozen=True)
class Outcome:
    """What happened to one function."""

    function: str
    result: Result
    detail: str


def outcome_of(step: Step) -> Outcome:
    """A step's outcome when it is applied successfully (or needs nothing applied)."""
    return Outcome(step.function.name, _RESULT_OF[step.action], step.reason)


def backoff(attempt: int) -> float:
    """Seconds to wait after the ``attempt``-th throttled try: 2, 4, 8 ... at most 60."""
    return float(min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)))


def wait_updated(
    lambda_client: Any,
    function_arn: str,
    *,
    delay: float = WAITER_DELAY_SECONDS,
    max_attempts: int = WAITER_MAX_ATTEMPTS,
    secrets: Iterable[str] = (),
) -> str | None:
    """Wait with botocore's waiter until the function's update is done; None, or why it failed.

    Lambda's reason is redacted: ``secrets`` (the values sent) are masked wherever it quotes them.
    """
    from botocore.exceptions import WaiterError  # noqa: PLC0415

    try:
        lambda_client.get_waiter(UPDATE_WAITER).wait(
            FunctionName=function_arn,
            WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts},
        )
    except WaiterError as exc:
        last = exc.last_response or {}
        configuration = last.get("Configuration") or {}
        if configuration.get("LastUpdateStatus") == "Failed":
            reason = configuration.get("LastUpdateStatusReason") or "no reason given"
            return f"the update failed: {redacted(str(reason), secrets)}"
        error = last.get("Error") or {}
        if error:
            return error_summary(error)
        return f"still updating after {delay * max_attempts:.0f} s"
    return None


@dataclass
class FleetUpdater:
    """Applies steps in order: the ones that change something paced and retried, the rest reported.

    ``replan`` turns a function's fresh configuration into its step (attach or detach planning).
    """

    lambda_client: Any
    replan: Callable[[FleetFunction], Step]
    pacer: Pacer
    sleep: Sleep = time.sleep
    waiter_delay: float = WAITER_DELAY_SECONDS
    waiter_max_attempts: int = WAITER_MAX_ATTEMPTS

    def run(
        self, steps: Iterable[Step], on_outcome: Callable[[Outcome], None] = lambda _o: None
    ) -> list[Outcome]:
        """Apply every step; an outcome per function, in order."""
        outcomes = []
        for step in steps:
            if step.changes:
                try:
                    outcome = self._apply(step)
                except AwsError as exc:
                    outcome = Outcome(step.function.name, "failed", str(exc))
            else:
                outcome = outcome_of(step)
            outcomes.append(outcome)
            on_outcome(outcome)
        return outcomes

    def _wait(self, arn: str, secrets: Iterable[str] = ()) -> str | None:
        return wait_updated(
            self.lambda_client,
            arn,
            delay=self.waiter_delay,
            max_attempts=self.waiter_max_attempts,
            secrets=secrets,
        )

    def _apply(self, step: Step) -> Outcome:
        from botocore.exceptions import ClientError  # noqa: PLC0415

        name = step.function.name
        self.pacer.wait_turn()
        last = "no attempt"
        for attempt in range(1, MAX_ATTEMPTS + 1):
            fresh = self.replan(read_function(self.lambda_client, step.function.arn))
            if not fresh.changes:
                return outcome_of(fresh)
            # What is sent: its values are masked wherever AWS quotes one back.
            sent = dict(fresh.variables) or dict(fresh.function.variables)
            try:
                self.lambda_client.update_function_configuration(**fresh.update_arguments())
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code = str(error.get("Code", "Unknown"))
                last = error_summary(error, sent)
                if code == "ResourceConflictException":  # another update is in progress
                    self._wait(step.function.arn)
                elif code == "TooManyRequestsException":
                    self.sleep(backoff(attempt))
                elif code != "PreconditionFailedException":  # the revision moved: read again
                    return Outcome(name, "failed", last)
                continue
            failure = self._wait(step.function.arn, secret_values(sent))
            if failure:
                return Outcome(name, "failed", failure)
            return outcome_of(fresh)
        return Outcome(name, "failed", f"gave up after {MAX_ATTEMPTS} attempts ({last})")
