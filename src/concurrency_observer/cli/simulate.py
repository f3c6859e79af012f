"""``concurrency-observer simulate``: placeholder until its issue lands (see the issue list)."""

from __future__ import annotations

import click


@click.command()
def simulate() -> None:
    """Not built yet."""
    raise click.ClickException("'simulate' is not available yet")
