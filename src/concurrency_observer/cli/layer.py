"""``concurrency-observer layer build|publish|detach``."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from concurrency_observer.aws.session import client
from concurrency_observer.cli import layer_fleet, layer_roles, options
from concurrency_observer.errors import AwsError, UserError
from concurrency_observer.layer import DEFAULT_OUTPUT, build_layer
from concurrency_observer.rollout.fleet_update import DEFAULT_MAX_PER_MINUTE, Pacer
from concurrency_observer.rollout.observer_settings import METRICS_VARIABLE, Settings

# rollout.publish and aws.session import boto3 only when a client is made, so ``--help`` stays fast.
from concurrency_observer.rollout.publish import (
    DEFAULT_LAYER_NAME,
    apply_plan,
    layer_spec,
    plan_publish,
    render_attachment,
    render_plan,
)
from concurrency_observer.rollout.rollout_errors import redacted
from concurrency_observer.rollout.sink import DEFAULT_SINK, SINK_VARIABLE, SINKS, Sink
from concurrency_observer.schema import DEFAULT_METRICS_PROFILE, METRICS_PROFILES

_F = TypeVar("_F", bound=Callable[..., None])


def _redacting(command: _F) -> _F:
    """Every AWS error a rollout command ends with goes through ``redacted`` on its way out.

    The calls that send variables already summarize their refusals; this is the one net under
    every other call, so no AWS message reaches the terminal with the request data it echoes.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except AwsError as exc:
            raise AwsError(redacted(str(exc))) from exc

    return wrapper  # type: ignore[return-value]


@click.group(short_help="Build the layer, or publish and attach it.")
def layer() -> None:
    """Build the Lambda layer, or publish it to AWS and attach it to functions."""


@layer.command()
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_OUTPUT,
    show_default=True,
    help="Where to write the layer zip.",
)
@click.option(
    "--bytecode/--no-bytecode",
    default=True,
    show_default=True,
    help="Ship .pyc files compiled by this Python: a runtime of the same minor version "
    "skips compiling the extension at every cold start (others ignore them).",
)
def build(output: Path, bytecode: bool) -> None:
    """Write the layer zip (deterministic: the same source gives the same bytes)."""
    try:
        built = build_layer(output, bytecode=bytecode)
    except OSError as exc:  # a directory that cannot be created or written: one line
        raise UserError(f"cannot write {output}: {exc.strerror or exc}") from exc
    click.echo(f"wrote {built.path} ({built.size} bytes, {len(built.entries)} files)")
    click.echo(f"sha256 {built.sha256}")


def _function_names(values: tuple[str, ...]) -> list[str]:
    """``--attach a --attach b,c`` as ``[a, b, c]``: names and ARNs never contain commas."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _globs(command: str) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """``--include`` and ``--exclude``, whose help names the flag they go with."""
    include = click.option(
        "--include",
        metavar="GLOB",
        multiple=True,
        help=f"With {command}: only functions whose name matches (shell glob, repeatable).",
    )
    exclude = click.option(
        "--exclude",
        metavar="GLOB",
        multiple=True,
        help=f"With {command}: leave out functions whose name matches (repeatable).",
    )
    return include, exclude


_pace = click.option(
    "--max-per-minute",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PER_MINUTE,
    show_default=True,
    help="For a fleet (--attach-all, detach): update at most this many functions a minute. "
    "Each update replaces all of that function's warm environments (cold starts), so a fleet "
    "is changed a few at a time.",
)
_include_all, _exclude_all = _globs("--attach-all")
_include_detach, _exclude_detach = _globs("--all")


@layer.command()
@click.option("--name", default=DEFAULT_LAYER_NAME, show_default=True, help="Layer name.")
@options.region
@click.option(
    "--attach",
    "functions",
    metavar="FUNCTION",
    multiple=True,
    help="Add the layer to this function (name or ARN); repeat, or separate with commas.",
)
@click.option(
    "--attach-all",
    is_flag=True,
    help="Add the layer to every function in the region (see --include, --exclude), paced; "
    "publishes only if the latest version holds other bytes.",
)
@_include_all
@_exclude_all
@click.option(
    "--sink",
    type=click.Choice(SINKS),
    help=f"Set {SINK_VARIABLE} on attached functions (default: keep the function's own, else "
    f"{DEFAULT_SINK}; emf on runtimes without Python 3.10+, where the bash fallback runs).",
)
@click.option(
    "--metrics",
    type=click.Choice(METRICS_PROFILES),
    help=f"Set {METRICS_VARIABLE} on attached functions (default: keep the function's own, else "
    f"{DEFAULT_METRICS_PROFILE}: one custom metric per init type; full: 22-31 per function).",
)
@_pace
@click.option(
    "--grant-roles",
    is_flag=True,
    help="Also attach one managed policy granting cloudwatch:PutMetricData in the function's "
    "namespace to each distinct role of the functions on the cloudwatch sink that lacks it "
    "(created once; `layer detach` takes it back). Without it, the plan and the summary say "
    "which roles may lack it.",
)
@click.option(
    "--zip",
    "zip_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Publish this layer zip instead of building one.",
)
@click.option("--dry-run", is_flag=True, help="Show what would change, and change nothing.")
@_redacting
def publish(  # click passes options by keyword
    *,
    name: str,
    region: str | None,
    functions: tuple[str, ...],
    attach_all: bool,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    sink: Sink | None,
    metrics: str | None,
    max_per_minute: int,
    grant_roles: bool,
    zip_path: Path | None,
    dry_run: bool,
) -> None:
    """Publish the layer (every runtime family, x86_64 and arm64) and print its LayerVersionArn.

    With --attach, every function is checked first (a zip function's $LATEST, at most 5 layers)
    and none is changed if any is refused; then each gets the new version in place of an older
    one of this layer, keeping its other layers and environment variables. Where the runtime has
    no Python 3.10+, the layer's bash engine runs (no Telemetry API account, EMF lines: the
    sink defaults to emf there), and a line says so; so does one for Lambda Managed Instances.

    With --attach-all, every function in the region (ListFunctions) is planned on its own:
    attach, upgrade in place, unchanged, or skipped with the reason (a container image, the
    5-layer limit, the 250 MB unzipped limit). The updates are paced (--max-per-minute), and a
    summary table ends the run; a second run changes nothing. Only $LATEST changes: aliases and
    provisioned concurrency run published versions, which get the layer with your next publish.
    `layer detach` takes it all back.

    With the cloudwatch sink every function's role needs cloudwatch:PutMetricData: the plan and
    the summary list the distinct roles and whether each has it; --grant-roles grants it.
    """
    if attach_all and functions:
        raise UserError("give --attach FUNCTION or --attach-all, not both")
    if not attach_all:
        for flag, given in (("--include", include), ("--exclude", exclude)):
            if given:
                raise UserError(f"{flag} works with --attach-all only")
    if grant_roles and not (attach_all or functions):
        raise UserError("--grant-roles works with --attach or --attach-all only")
    content = zip_path.read_bytes() if zip_path else _built_layer()
    lambda_client = client("lambda", region=region)
    iam = client("iam", region=region)
    if attach_all:
        code = layer_fleet.attach_all(
            lambda_client,
            layer_spec(lambda_client, name),
            content,
            Settings(sink=sink, metrics=metrics),
            include=include,
            exclude=exclude,
            max_per_minute=max_per_minute,
            dry_run=dry_run,
            iam=iam,
            grant_roles=grant_roles,
        )
        if code:
            raise SystemExit(code)
        return
    plan = plan_publish(
        lambda_client,
        layer_spec(lambda_client, name),
        len(content),
        _function_names(functions),
        sink,
        metrics=metrics,
    )
    roles = layer_roles.check(iam, layer_roles.from_plan(plan), grant=grant_roles)
    if dry_run:
        click.echo("\n".join(render_plan(plan)))
        if plan.attachments:
            layer_roles.print_plan(click.echo, roles, grant=grant_roles)
        click.echo("dry run: nothing was changed")
        return
    roles_failed = bool(plan.attachments) and layer_roles.apply(
        lambda line: click.echo(line, err=True),
        iam,
        roles,
        grant=grant_roles,
        region=str(lambda_client.meta.region_name),
        pacer=Pacer(max_per_minute),
    )
    result = apply_plan(
        lambda_client, plan, content, progress=lambda line: click.echo(line, err=True)
    )
    for attachment in plan.attachments:
        click.echo("\n".join(render_attachment(attachment, result.layer_version_arn)), err=True)
    # The ARN alone on stdout, so scripts can capture it.
    click.echo(result.layer_version_arn)
    if roles_failed:
        raise SystemExit(1)


@layer.command()
@click.argument("functions", metavar="[FUNCTION]...", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every function in the region that has it.")
@_include_detach
@_exclude_detach
@click.option("--name", default=DEFAULT_LAYER_NAME, show_default=True, help="Layer name.")
@options.region
@_pace
@click.option("--dry-run", is_flag=True, help="Show what would change, and change nothing.")
@_redacting
def detach(  # click passes options by keyword
    *,
    functions: tuple[str, ...],
    all_: bool,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    name: str,
    region: str | None,
    max_per_minute: int,
    dry_run: bool,
) -> None:
    """Take the layer off FUNCTION (name or ARN, repeatable) or, with --all, every function.

    Removes exactly this layer (any version: matched by its name in the ARN) and the settings
    attaching added, and nothing else: each variable attach set gets its earlier value back, or
    goes if there was none, unless you changed it since (then it stays); variables attach did
    not set are never touched (attach records what it set in CONCURRENCY_OBSERVER_ATTACHED).
    Paced like --attach-all. Only $LATEST changes: published versions keep the layer. A role
    that `--grant-roles` granted (it says so in a tag on the role) loses that policy once no
    function of the region with the layer uses it, and the policy goes once no role holds it.
    """
    names = _function_names(functions)
    if all_ == bool(names):
        raise UserError("name the functions to detach from, or give --all (not both)")
    if names and (include or exclude):
        raise UserError("--include and --exclude work with --all only")
    lambda_client = client("lambda", region=region)
    layer_spec(lambda_client, name)  # a bad layer name is one line, before any call
    code = layer_fleet.detach(
        lambda_client,
        name,
        names,
        include=include,
        exclude=exclude,
        max_per_minute=max_per_minute,
        dry_run=dry_run,
        iam=client("iam", region=region),
    )
    if code:
        raise SystemExit(code)


def _built_layer() -> bytes:
    """Build the layer in a scratch directory: publishing leaves nothing behind locally."""
    with tempfile.TemporaryDirectory(prefix="concurrency-observer-") as scratch:
        return build_layer(Path(scratch) / "layer.zip").path.read_bytes()
