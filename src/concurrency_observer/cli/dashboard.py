"""``concurrency-observer dashboard``: placeholder until its issue lands (see the issue list)."""

from __future__ import annotations

import click


@click.command()
def dashboard() -> None:
    """Not built yet."""
    raise click.ClickException("'dashboard' is not available yet")
