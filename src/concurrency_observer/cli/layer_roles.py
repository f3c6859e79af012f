"""The roles part of ``layer publish --attach|--attach-all`` and ``layer detach``, click kept out.

Attach reads every role before anything changes (``check``): with ``--grant-roles`` a role that
cannot be read or is another account's stops the command with nothing changed; without it, the
plan and the summary say, per role, whether it has what the cloudwatch sink needs. Detach takes
back what attach granted, once the functions are done (``revoke``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from concurrency_observer.reporting.role_lines import NOTHING_NEEDED, need_lines, outcome_lines
from concurrency_observer.rollout.fleet_functions import FleetFunction, list_functions
from concurrency_observer.rollout.fleet_step import Step
from concurrency_observer.rollout.fleet_update import Pacer, Sleep
from concurrency_observer.rollout.publish import PublishPlan
from concurrency_observer.rollout.role_grants import (
    RoleCheck,
    grant_roles,
    plan_grants,
    read_roles,
    refuse_unreadable,
)
from concurrency_observer.rollout.role_policy import Attached, role_needs
from concurrency_observer.rollout.role_revoke import revoke_roles

Echo = Callable[[str], None]


def from_steps(steps: Iterable[Step]) -> list[Attached]:
    """The functions an attach-all leaves with the layer, as they will be configured."""
    return [
        Attached(
            step.function.name,
            step.function.arn,
            step.function.role,
            step.function.runtime,
            step.variables if step.changes else step.function.variables,
        )
        for step in steps
        if step.action != "skip"
    ]


def from_plan(plan: PublishPlan) -> list[Attached]:
    """The functions ``--attach`` attaches, as they will be configured."""
    return [
        Attached(
            a.function.name,
            a.function.arn,
            a.function.role,
            a.function.runtime,
            a.variables_after(),
        )
        for a in plan.attachments
    ]


def check(iam: Any, functions: Iterable[Attached], *, grant: bool) -> RoleCheck:
    """Read every role (only reads); with ``grant``, refuse now if any cannot be granted."""
    checked = read_roles(iam, role_needs(functions), simulate=not grant)
    if grant:
        refuse_unreadable(checked.states)
    return checked


def print_plan(echo: Echo, checked: RoleCheck, *, grant: bool) -> None:
    """The roles part of a dry run."""
    if not grant:
        for line in need_lines(checked.states, checked.simulation_refused):
            echo(line)
    elif not checked.states:
        echo(NOTHING_NEEDED)
    else:
        echo("roles (--grant-roles):")
        for line in outcome_lines("roles", plan_grants(checked.states)):
            echo(line)


def apply(
    echo: Echo,
    iam: Any,
    checked: RoleCheck,
    *,
    grant: bool,
    region: str,
    pacer: Pacer,
    sleep: Sleep = time.sleep,
) -> bool:
    """Grant (with ``grant``) or report the roles; True if a role could not be granted."""
    if not grant:
        print_plan(echo, checked, grant=False)
        return False
    if not checked.states:
        echo(NOTHING_NEEDED)
        return False
    echo("roles (--grant-roles):")
    outcomes = grant_roles(iam, checked.states, region=region, pacer=pacer, sleep=sleep)
    for line in outcome_lines("roles", outcomes):
        echo(line)
    return any(outcome.result == "could not" for outcome in outcomes)


def _keeping_layer(functions: Iterable[FleetFunction], layer_name: str) -> Counter[str]:
    return Counter(
        f.role for f in functions if f.role and any(layer.name == layer_name for layer in f.layers)
    )


def revoke(
    echo: Echo,
    lambda_client: Any,
    iam: Any,
    steps: Sequence[Step],
    layer_name: str,
    *,
    dry_run: bool,
    pacer: Pacer,
    sleep: Sleep = time.sleep,
) -> bool:
    """Take attach's grant off the detached functions' roles; True if a role could not be."""
    roles = {step.function.role for step in steps if step.function.role}
    if not roles:
        return False
    region = str(lambda_client.meta.region_name)
    listing = list_functions(lambda_client)
    if dry_run:
        detaching = {step.function.arn for step in steps if step.action == "detach"}
        listing = [f for f in listing if f.arn not in detaching]
    still_used = _keeping_layer(listing, layer_name)
    done = revoke_roles(iam, roles, still_used, region, dry_run=dry_run, pacer=pacer, sleep=sleep)
    if not done.outcomes:
        return False
    echo(
        "roles attach granted (taken back once no function of this region with the layer uses "
        "them):"
    )
    for line in outcome_lines("roles", done.outcomes):
        echo(line)
    for policy in done.deleted:
        echo(f"policy {policy} {'would be' if dry_run else 'was'} deleted: no role holds it")
    return any(outcome.result == "could not" for outcome in done.outcomes)
