"""``concurrency-observer report``: placeholder until its issue lands (see the issue list)."""

from __future__ import annotations

import click


@click.command()
def report() -> None:
    """Not built yet."""
    raise click.ClickException("'report' is not available yet")
