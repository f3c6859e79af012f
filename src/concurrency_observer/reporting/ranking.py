"""``report --all`` output: a ranked table for people, JSON and CSV for scripts.

The JSON document is ``Ranking.to_dict()``; the CSV has one row per function with the columns
``CSV_COLUMNS`` (an empty cell is null), in rank order.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Final

import click
from rich.console import Console
from rich.table import Table

from concurrency_observer.aws.ranking import Ranking, rows

CSV_COLUMNS: Final = (
    "function",
    "created",
    "shut_down",
    "never_invoked_share",
    "proactive_share",
    "peak_live",
    "peak_concurrent_executions",
    "over_provisioning_ratio",
)


def ranking_json(ranking: Ranking) -> str:
    """The JSON document, indented, with a trailing newline."""
    return json.dumps(ranking.to_dict(), indent=2) + "\n"


def ranking_csv(ranking: Ranking) -> str:
    """One header row, then one row per function in rank order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in rows(ranking):
        writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    return buffer.getvalue()


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def ranking_table(ranking: Ranking) -> Table:
    """The ranked functions as a rich table."""
    window = ranking.window
    table = Table(
        title=(
            f"Every function in {ranking.namespace}, by {ranking.sort_key}: "
            f"{window.start:%Y-%m-%d %H:%M} to {window.end:%Y-%m-%d %H:%M} UTC"
        ),
        title_justify="left",
        caption="shares over the environments that shut down in the window with a known class; "
        "over-provisioning: peak live environments / peak ConcurrentExecutions (AWS/Lambda)",
    )
    for name in (
        "#",
        "function",
        "created",
        "never invoked",
        "proactive",
        "peak live",
        "over-prov.",
    ):
        if name == "function":
            table.add_column(name, overflow="fold")
        else:
            table.add_column(name, justify="right")
    for position, function in enumerate(ranking.functions, start=1):
        table.add_row(
            str(position),
            function.function_name,
            str(function.created),
            _share(function.never_invoked_share),
            _share(function.proactive_share),
            str(function.peak_live),
            _ratio(function.over_provisioning),
        )
    return table


def emit_ranking(ranking: Ranking, output_format: str, console: Console | None = None) -> None:
    """Write the ranking to standard output in ``output_format`` (table, json or csv)."""
    if output_format == "table":
        console = console or Console()
        console.print(ranking_table(ranking))
        for note in ranking.notes:
            console.print(f"note: {note}", markup=False, highlight=False)
        return
    click.echo(ranking_json(ranking) if output_format == "json" else ranking_csv(ranking), nl=False)
    if output_format == "csv":  # the CSV has one row per function: the notes go to stderr
        for note in ranking.notes:
            click.echo(f"note: {note}", err=True)
