"""What ``layer publish --attach-all`` and ``layer detach`` do and print, with click kept out.

Plans and tables go to stdout, progress to stderr; the exit status is 1 if any function failed
(or a role ``--grant-roles`` asked for could not be granted). Given an IAM client, attach-all
reads the roles before anything changes and grants them (``--grant-roles``) before the functions
are updated, and detach takes back what attach granted once the functions are done (layer_roles).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from concurrency_observer.cli import layer_roles
from concurrency_observer.cost_note import cost_note
from concurrency_observer.errors import UserError
from concurrency_observer.reporting.fleet_summary import counts_line, plan_table, summary_table
from concurrency_observer.rollout.attach_all import (
    Target,
    choose_layer_version,
    ensure_layer_version,
    fill_layer_sizes,
    plan_attach,
    plan_fleet,
    unzipped_size,
)
from concurrency_observer.rollout.detach import plan_detach, plan_detach_all
from concurrency_observer.rollout.fleet_functions import (
    FleetFunction,
    list_functions,
    read_function,
    select,
)
from concurrency_observer.rollout.fleet_step import Step
from concurrency_observer.rollout.fleet_update import (
    Clock,
    FleetUpdater,
    Outcome,
    Pacer,
    Sleep,
    pacing_note,
)
from concurrency_observer.rollout.observer_settings import METRICS_VARIABLE, Settings
from concurrency_observer.rollout.publish import LayerSpec

PUBLISHED_VERSIONS_NOTE = (
    "Provisioned concurrency and aliases run published versions: this changed $LATEST only, so "
    "environments of a published version (every provisioned-concurrency one among them) are "
    "observed only after the next version is published and the alias moved to it. Nothing here "
    "publishes versions or moves aliases."
)
DETACH_VERSIONS_NOTE = (
    "Published versions keep the layer they were published with: this changed $LATEST only, so "
    "aliases and provisioned concurrency keep the observer until the next version is published "
    "and the alias moved. Nothing here publishes versions or moves aliases."
)


def _consoles() -> tuple[Console, Console]:
    # Plain lines are never wrapped (they stay greppable); the tables fit the terminal. Markup is
    # off: every line holds names, variables or AWS's words, and rich would read a ``[/x]`` in
    # them as a tag (a MarkupError that stops the run) or drop ``[null,"lean"]`` as one.
    return Console(highlight=False, soft_wrap=True, markup=False), Console(
        stderr=True, highlight=False, soft_wrap=True, markup=False
    )


def _fleet(
    lambda_client: Any, include: Sequence[str], exclude: Sequence[str]
) -> list[FleetFunction]:
    functions = select(list_functions(lambda_client), include, exclude)
    if not functions:
        globs = " ".join(
            [*(f"--include {g}" for g in include), *(f"--exclude {g}" for g in exclude)]
        )
        raise UserError("no function in this region" + (f" matches {globs}" if globs else ""))
    return functions


def _apply(
    lambda_client: Any,
    steps: Sequence[Step],
    replan: Callable[[FleetFunction], Step],
    max_per_minute: int,
    *,
    out: Console,
    err: Console,
    pacer: Pacer,
) -> list[Outcome]:
    changes = sum(1 for step in steps if step.changes)
    if changes:
        err.print(pacing_note(max_per_minute, changes))
    updater = FleetUpdater(lambda_client, replan, pacer, sleep=pacer.sleep)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("updating", total=len(steps))

        def done(outcome: Outcome) -> None:
            if outcome.result != "unchanged":
                line = f"{outcome.result} {outcome.function}: {outcome.detail}"
                progress.console.print(line, markup=False)
            progress.advance(task)

        outcomes = updater.run(steps, on_outcome=done)
    out.print(summary_table(outcomes))
    out.print(counts_line(outcomes))
    return outcomes


def _cost_lines(steps: Sequence[Step]) -> list[str]:
    """The cost note for each metric profile the attached functions are configured with."""
    profiles = Counter(
        step.variables.get(METRICS_VARIABLE) or step.function.variables.get(METRICS_VARIABLE)
        for step in steps
        if step.action != "skip"
    )
    return [
        f"cost per function per month ({count} function(s) on {profile}): {cost_note(profile)}"
        for profile, count in sorted(profiles.items(), key=lambda item: str(item[0]))
        if profile
    ]


def attach_all(
    lambda_client: Any,
    layer: LayerSpec,
    content: bytes,
    settings: Settings,
    *,
    include: Sequence[str],
    exclude: Sequence[str],
    max_per_minute: int,
    dry_run: bool,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    iam: Any | None = None,
    grant_roles: bool = False,
) -> int:
    """Publish (unless the latest version has these bytes), attach to every selected function."""
    out, err = _consoles()
    choice = choose_layer_version(lambda_client, layer, content)
    functions = fill_layer_sizes(lambda_client, _fleet(lambda_client, include, exclude))
    target = Target(layer.name, choice.version_arn, unzipped_size(content), settings)
    steps = plan_fleet(functions, target)
    roles = (
        layer_roles.check(iam, layer_roles.from_steps(steps), grant=grant_roles) if iam else None
    )
    changes = any(step.changes for step in steps)
    if choice.reuse_arn:
        out.print(f"layer: {choice.reuse_arn} already holds these bytes; not publishing again")
    elif changes:
        verb = "would publish" if dry_run else "publishing"
        out.print(f"layer: {verb} {layer.name} as {choice.version_arn} ({len(content)} bytes)")
    if dry_run:
        out.print(plan_table(steps))
        if roles:
            layer_roles.print_plan(out.print, roles, grant=grant_roles)
        for line in _cost_lines(steps):
            out.print(line)
        out.print(PUBLISHED_VERSIONS_NOTE)
        out.print("dry run: nothing was changed")
        return 0
    pacer = Pacer(max_per_minute, clock, sleep)
    # Roles first: a function attached before its role may put metrics loses its first records.
    roles_failed = bool(
        roles
        and grant_roles
        and layer_roles.apply(
            out.print,
            iam,
            roles,
            grant=True,
            region=str(lambda_client.meta.region_name),
            pacer=pacer,
            sleep=sleep,
        )
    )
    if changes and not choice.reuse_arn:
        published = ensure_layer_version(lambda_client, choice, content)
        target = replace(target, version_arn=published)
        steps = plan_fleet(functions, target)
        err.print(f"published {published}")

    def replan(function: FleetFunction) -> Step:
        return plan_attach(fill_layer_sizes(lambda_client, [function])[0], target)

    outcomes = _apply(
        lambda_client,
        steps,
        replan,
        max_per_minute,
        out=out,
        err=err,
        pacer=pacer,
    )
    if roles and not grant_roles:
        layer_roles.print_plan(out.print, roles, grant=False)
    for line in _cost_lines(steps):
        out.print(line)
    out.print(PUBLISHED_VERSIONS_NOTE)
    failed = any(outcome.result == "failed" for outcome in outcomes)
    return 1 if failed or roles_failed else 0


def detach(
    lambda_client: Any,
    layer_name: str,
    functions: Sequence[str],
    *,
    include: Sequence[str],
    exclude: Sequence[str],
    max_per_minute: int,
    dry_run: bool,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    iam: Any | None = None,
) -> int:
    """Take the layer and its settings off the named functions, or every selected one.

    Given ``iam``, the roles attach granted are then taken back (layer_roles.revoke).
    """
    out, err = _consoles()
    if functions:
        fleet = [read_function(lambda_client, name) for name in functions]
    else:
        fleet = _fleet(lambda_client, include, exclude)
    steps = plan_detach_all(fleet, layer_name)
    pacer = Pacer(max_per_minute, clock, sleep)
    if dry_run:
        out.print(plan_table(steps))
        if iam:
            layer_roles.revoke(
                out.print, lambda_client, iam, steps, layer_name, dry_run=True, pacer=pacer
            )
        out.print(DETACH_VERSIONS_NOTE)
        out.print("dry run: nothing was changed")
        return 0
    outcomes = _apply(
        lambda_client,
        steps,
        lambda function: plan_detach(function, layer_name),
        max_per_minute,
        out=out,
        err=err,
        pacer=pacer,
    )
    roles_failed = bool(
        iam
        and layer_roles.revoke(
            out.print, lambda_client, iam, steps, layer_name, dry_run=False, pacer=pacer,
            sleep=sleep,
        )
    )  # fmt: skip
    out.print(DETACH_VERSIONS_NOTE)
    failed = any(outcome.result == "failed" for outcome in outcomes)
    return 1 if failed or roles_failed else 0
