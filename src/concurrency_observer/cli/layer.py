"""``concurrency-observer layer build|publish``."""

from __future__ import annotations

from pathlib import Path

import click

from concurrency_observer.layer import DEFAULT_OUTPUT, build_layer


@click.group()
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
def build(output: Path) -> None:
    """Write the layer zip (deterministic: the same source gives the same bytes)."""
    built = build_layer(output)
    click.echo(f"wrote {built.path} ({built.size} bytes, {len(built.entries)} files)")
    click.echo(f"sha256 {built.sha256}")
