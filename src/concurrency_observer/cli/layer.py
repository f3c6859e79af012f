"""``concurrency-observer layer build|publish``."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

# aws.publish and aws.session import boto3 only when a client is made, so ``--help`` stays fast.
from concurrency_observer.aws.publish import (
    DEFAULT_LAYER_NAME,
    DEFAULT_SINK,
    SINK_VARIABLE,
    SINKS,
    Sink,
    apply_plan,
    layer_spec,
    plan_publish,
    render_attachment,
    render_plan,
)
from concurrency_observer.aws.session import client
from concurrency_observer.cli import options
from concurrency_observer.errors import UserError
from concurrency_observer.layer import DEFAULT_OUTPUT, build_layer


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
    "--sink",
    type=click.Choice(SINKS),
    help=f"Set {SINK_VARIABLE} on attached functions (default: keep the function's own, else "
    f"{DEFAULT_SINK}; emf on runtimes without Python 3.10+, where the bash fallback runs).",
)
@click.option(
    "--zip",
    "zip_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Publish this layer zip instead of building one.",
)
@click.option("--dry-run", is_flag=True, help="Show what would change, and change nothing.")
def publish(  # click passes options by keyword
    *,
    name: str,
    region: str | None,
    functions: tuple[str, ...],
    sink: Sink | None,
    zip_path: Path | None,
    dry_run: bool,
) -> None:
    """Publish the layer (every runtime family, x86_64 and arm64) and print its LayerVersionArn.

    With --attach, every function is checked first (a zip function's $LATEST, at most 5 layers)
    and none is changed if any is refused; then each gets the new version in place of an older
    one of this layer, keeping its other layers and environment variables. Where the runtime has
    no Python 3.10+, the layer's bash fallback runs (init and shutdown only, as EMF lines: the
    sink defaults to emf there), and a line says so; so does one for Lambda Managed Instances.
    """
    content = zip_path.read_bytes() if zip_path else _built_layer()
    lambda_client = client("lambda", region=region)
    plan = plan_publish(
        lambda_client,
        layer_spec(lambda_client, name),
        len(content),
        _function_names(functions),
        sink,
    )
    if dry_run:
        click.echo("\n".join(render_plan(plan)))
        click.echo("dry run: nothing was changed")
        return
    result = apply_plan(
        lambda_client, plan, content, progress=lambda line: click.echo(line, err=True)
    )
    for attachment in plan.attachments:
        click.echo("\n".join(render_attachment(attachment, result.layer_version_arn)), err=True)
    # The ARN alone on stdout, so scripts can capture it.
    click.echo(result.layer_version_arn)


def _built_layer() -> bytes:
    """Build the layer in a scratch directory: publishing leaves nothing behind locally."""
    with tempfile.TemporaryDirectory(prefix="concurrency-observer-") as scratch:
        return build_layer(Path(scratch) / "layer.zip").path.read_bytes()
