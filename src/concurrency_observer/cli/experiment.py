"""``concurrency-observer experiment``: placeholder until its issue lands (see the issue list)."""

from __future__ import annotations

import click


@click.command()
def experiment() -> None:
    """Not built yet."""
    raise click.ClickException("'experiment' is not available yet")
