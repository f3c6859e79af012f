"""Read, grant and take back the roles' PutMetricData policy (IAM), paced and retried.

``read_roles`` only reads: for each (role, namespace) of role_policy, whether our policy is attached
(ListAttachedRolePolicies), which regions' attach granted it (the role's grant tag, ListRoleTags),
and, where ``iam:SimulatePrincipalPolicy`` is allowed, whether the role may put metrics in the
namespace at all (granted some other way, or denied by a permissions boundary). A role of another
account, or one that cannot be read, is marked unreadable: ``--grant-roles`` then refuses before
anything changes.

``grant_roles`` creates each namespace's policy once (CreatePolicy; EntityAlreadyExists is
success) and attaches it to each role that lacks it, one role at a time on the fleet's ``Pacer``,
throttling retried with the fleet's backoff. Per role the order is: tag (this region), then attach;
if the attach fails or the run is cut short, the tag is put back as it was, so each role ends
granted or untouched, and a role left tagged without the policy (a run killed between the two
calls) is granted by the next run and cleaned up by detach. Taking it back is role_revoke's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from concurrency_observer.errors import UserError
from concurrency_observer.rollout.fleet_update import MAX_ATTEMPTS, Pacer, Sleep, backoff
from concurrency_observer.rollout.role_policy import (
    POLICY_PATH,
    PUT_METRICS,
    BadRole,
    RoleNeed,
    RoleRef,
    grant_tag_key,
    policy_arn,
    policy_json,
    policy_name,
    tag_regions,
    tag_value,
)
from concurrency_observer.rollout.rollout_errors import error_summary

RoleResult = Literal[
    "granted", "would grant", "already had it", "revoked", "kept", "could not", "unchecked"
]
ROLE_RESULTS: Final[tuple[RoleResult, ...]] = (
    "granted",
    "would grant",
    "already had it",
    "revoked",
    "kept",
    "could not",
    "unchecked",
)
# IAM's answers that are worth waiting out.
_RETRIED: Final = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "ConcurrentModification"}
)


@dataclass(frozen=True)
class RoleState:
    """What is known of one role's grant before anything changes."""

    need: RoleNeed
    attached: bool | None = None  # our policy is attached; None: not known
    tagged: frozenset[str] = frozenset()  # the regions whose attach granted it
    may_put: bool | None = None  # SimulatePrincipalPolicy's answer; None: not asked or refused
    unreadable: str | None = None  # why the role could not be read


@dataclass(frozen=True)
class RoleOutcome:
    """What happened, or would happen, to one role."""

    role: str
    functions: int
    result: RoleResult
    detail: str


@dataclass
class Simulation:
    """SimulatePrincipalPolicy, asked until it is refused once (then never again this run)."""

    iam: Any
    refused: str | None = field(default=None, init=False)

    def may_put(self, role_arn: str, namespace: str) -> bool | None:
        """Whether the role may call PutMetricData in ``namespace``; None if it cannot be known."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        if self.refused:
            return None
        try:
            answer = self.iam.simulate_principal_policy(
                PolicySourceArn=role_arn,
                ActionNames=[PUT_METRICS],
                ResourceArns=["*"],
                ContextEntries=[
                    {
                        "ContextKeyName": "cloudwatch:namespace",
                        "ContextKeyValues": [namespace],
                        "ContextKeyType": "string",
                    }
                ],
            )
        except ClientError as exc:
            self.refused = error_summary(exc.response.get("Error", {}))
            return None
        except BotoCoreError as exc:
            self.refused = str(exc)
            return None
        except NotImplementedError:  # an emulated endpoint (moto in-process) that lacks the call
            self.refused = "SimulatePrincipalPolicy is not implemented by this endpoint"
            return None
        results = answer.get("EvaluationResults") or []
        if not results:
            return None
        return all(result.get("EvalDecision") == "allowed" for result in results)


def client_error(exc: Exception) -> dict[str, Any]:
    """The ``Error`` body of a botocore ClientError (empty for anything else)."""
    return dict(getattr(exc, "response", {}).get("Error", {}))


def _attached_policies(iam: Any, role_name: str) -> set[str]:
    pages = iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name)
    return {p["PolicyArn"] for page in pages for p in page.get("AttachedPolicies", ())}


def role_tags(iam: Any, role_name: str) -> dict[str, str]:
    """Every tag of the role (ListRoleTags, all pages)."""
    tags: dict[str, str] = {}
    arguments: dict[str, Any] = {"RoleName": role_name}
    while True:
        page = iam.list_role_tags(**arguments)
        tags.update({tag["Key"]: tag["Value"] for tag in page.get("Tags", ())})
        if not page.get("IsTruncated"):
            return tags
        arguments["Marker"] = page["Marker"]


# Refusals that hold for every role alike: once one is seen, the other roles are not asked.
_DENIED: Final = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


def read_role(
    iam: Any, need: RoleNeed, simulation: Simulation | None, denied: str | None = None
) -> RoleState:
    """One role's state; a role that cannot be read says why in ``unreadable``.

    ``denied`` (an earlier role's access refusal) is taken as this role's answer too.
    """
    from botocore.exceptions import ClientError  # noqa: PLC0415

    try:
        role = need.role()
    except BadRole as exc:
        return RoleState(need, unreadable=str(exc))
    may_put = simulation.may_put(need.role_arn, need.namespace) if simulation else None
    if denied:
        return RoleState(need, may_put=may_put, unreadable=denied)
    try:
        attached = policy_arn(role, need.namespace) in _attached_policies(iam, role.name)
        tags = role_tags(iam, role.name)
    except ClientError as exc:
        reason = f"{exc.operation_name}: {error_summary(client_error(exc))}"
        return RoleState(need, may_put=may_put, unreadable=reason)
    tagged = tag_regions(tags.get(grant_tag_key(need.namespace)))
    return RoleState(need, attached, tagged, may_put)


@dataclass(frozen=True)
class RoleCheck:
    """Every role's state, and why SimulatePrincipalPolicy could not answer (if it could not)."""

    states: tuple[RoleState, ...]
    simulation_refused: str | None = None


def read_roles(iam: Any, needs: Iterable[RoleNeed], *, simulate: bool) -> RoleCheck:
    """Every role's state, in order; SimulatePrincipalPolicy only when ``simulate``."""
    simulation = Simulation(iam) if simulate else None
    states: list[RoleState] = []
    denied: str | None = None
    for need in needs:
        state = read_role(iam, need, simulation, denied)
        if state.unreadable and any(code in state.unreadable for code in _DENIED):
            denied = state.unreadable
        states.append(state)
    return RoleCheck(tuple(states), simulation.refused if simulation else None)


def refuse_unreadable(states: Sequence[RoleState]) -> None:
    """Raise UserError (nothing changed yet) if any role cannot be read or granted from here."""
    problems = [f"{s.need.role_name}: {s.unreadable}" for s in states if s.unreadable]
    if problems:
        raise UserError("not granting any role (nothing was changed); " + "; ".join(problems))


def retried(call: Callable[[], Any], sleep: Sleep) -> Any:
    """``call()``, with IAM's throttling waited out (the fleet's backoff) up to MAX_ATTEMPTS."""
    from botocore.exceptions import ClientError  # noqa: PLC0415

    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return call()
        except ClientError as exc:
            if client_error(exc).get("Code") not in _RETRIED or attempt == MAX_ATTEMPTS:
                raise
            sleep(backoff(attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def why_refused(error: Mapping[str, Any]) -> str:
    """A refusal's code, what denied it where IAM's message says so, and the message, redacted."""
    message = str(error.get("Message") or "").lower()
    if "permissions boundary" in message:
        where = " (a permissions boundary)"
    elif "service control polic" in message:
        where = " (a service control policy)"
    elif "explicit deny" in message:
        where = " (an explicit deny)"
    else:
        where = ""
    code, _, rest = error_summary(error).partition(": ")
    return f"{code}{where}: {rest}" if rest else f"{code}{where}"


def ensure_policy(iam: Any, role: RoleRef, namespace: str, sleep: Sleep = time.sleep) -> str:
    """The namespace's policy ARN, creating the policy if it does not exist yet (idempotent)."""
    from botocore.exceptions import ClientError  # noqa: PLC0415

    try:
        retried(
            lambda: iam.create_policy(
                PolicyName=policy_name(namespace),
                Path=POLICY_PATH,
                PolicyDocument=policy_json(namespace),
                Description=(
                    f"concurrency-observer: {PUT_METRICS} in namespace {namespace} "
                    "(layer publish --grant-roles)"
                )[:1000],
            ),
            sleep,
        )
    except ClientError as exc:
        if client_error(exc).get("Code") != "EntityAlreadyExists":
            raise
    return policy_arn(role, namespace)


def set_tag(iam: Any, role: str, key: str, regions: frozenset[str], sleep: Sleep) -> None:
    """Write the grant tag with ``regions``, or remove it when there are none."""
    if regions:
        retried(
            lambda: iam.tag_role(RoleName=role, Tags=[{"Key": key, "Value": tag_value(regions)}]),
            sleep,
        )
    else:
        retried(lambda: iam.untag_role(RoleName=role, TagKeys=[key]), sleep)


def _grant_one(
    iam: Any, state: RoleState, policy: str, *, region: str, pacer: Pacer, sleep: Sleep
) -> RoleOutcome:
    need = state.need
    role = need.role()
    key = grant_tag_key(need.namespace)
    count = len(need.functions)
    if state.attached:
        if state.tagged and region not in state.tagged:
            pacer.wait_turn()  # attach granted it from another region: this one relies on it too
            set_tag(iam, role.name, key, state.tagged | {region}, sleep)
        how = "granted by attach" if state.tagged else "attached before; left as it is"
        return RoleOutcome(
            role.name, count, "already had it", f"{policy_name(need.namespace)} ({how})"
        )
    pacer.wait_turn()
    set_tag(iam, role.name, key, state.tagged | {region}, sleep)
    try:
        retried(lambda: iam.attach_role_policy(RoleName=role.name, PolicyArn=policy), sleep)
    except BaseException:
        # Refused, throttled beyond the retries, or cut short: the role goes back as it was.
        _restore_tag(iam, role.name, key, state.tagged, sleep)
        raise
    return RoleOutcome(role.name, count, "granted", f"attached {policy_name(need.namespace)}")


def _restore_tag(iam: Any, role: str, key: str, regions: frozenset[str], sleep: Sleep) -> None:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    # If even this fails, the next run (or detach) finds the tag and finishes the job.
    with contextlib.suppress(ClientError, BotoCoreError):
        set_tag(iam, role, key, regions, sleep)


def grant_roles(
    iam: Any,
    states: Sequence[RoleState],
    *,
    region: str,
    pacer: Pacer,
    sleep: Sleep = time.sleep,
    on_outcome: Callable[[RoleOutcome], None] = lambda _o: None,
) -> list[RoleOutcome]:
    """Attach each namespace's policy to every role that lacks it; an outcome per role."""
    from botocore.exceptions import ClientError  # noqa: PLC0415

    refuse_unreadable(states)
    policies: dict[str, str | RoleOutcome] = {}  # namespace -> ARN, or why it could not be made
    outcomes = []
    for state in states:
        need = state.need
        try:
            if need.namespace not in policies and not state.attached:
                policies[need.namespace] = ensure_policy(iam, need.role(), need.namespace, sleep)
            made = policies.get(need.namespace, policy_arn(need.role(), need.namespace))
            if isinstance(made, RoleOutcome):
                outcome = RoleOutcome(need.role_name, len(need.functions), "could not", made.detail)
            else:
                outcome = _grant_one(iam, state, made, region=region, pacer=pacer, sleep=sleep)
        except ClientError as exc:
            reason = f"{exc.operation_name}: {why_refused(client_error(exc))}"
            outcome = RoleOutcome(need.role_name, len(need.functions), "could not", reason)
            if exc.operation_name == "CreatePolicy":
                policies[need.namespace] = outcome
        outcomes.append(outcome)
        on_outcome(outcome)
    return outcomes


def plan_grants(states: Sequence[RoleState]) -> list[RoleOutcome]:
    """What ``grant_roles`` would do (a dry run), role by role."""
    outcomes = []
    for state in states:
        need = state.need
        count = len(need.functions)
        if state.unreadable:
            outcomes.append(RoleOutcome(need.role_name, count, "could not", state.unreadable))
        elif state.attached:
            outcomes.append(
                RoleOutcome(need.role_name, count, "already had it", policy_name(need.namespace))
            )
        else:
            what = f"attach {policy_name(need.namespace)} (created if missing)"
            outcomes.append(RoleOutcome(need.role_name, count, "would grant", what))
    return outcomes
