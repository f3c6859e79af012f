"""The tables attach-all and detach print: the plan (dry run) and the summary (after).

Every cell is a ``Text``, never a string: names, reasons and AWS's words are shown as they are,
so a ``[/x]`` or ``[bold]`` in them is neither read as markup (a MarkupError) nor swallowed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from rich.table import Table
from rich.text import Text

from concurrency_observer.rollout.fleet_step import Step
from concurrency_observer.rollout.fleet_update import RESULTS, Outcome

_STYLE = {
    "attached": "green",
    "upgraded": "green",
    "detached": "green",
    "unchanged": "dim",
    "skipped": "yellow",
    "failed": "bold red",
}


def plan_table(steps: Sequence[Step]) -> Table:
    """One row per function: what a real run would do, and why."""
    table = Table(title="plan (dry run: nothing is changed)", title_justify="left")
    table.add_column("function", no_wrap=True)
    table.add_column("runtime", no_wrap=True)
    table.add_column("would", no_wrap=True)
    table.add_column("what, or why not")
    for step in steps:
        table.add_row(
            Text(step.function.name),
            Text(step.function.runtime or step.function.package_type),
            Text(step.action),
            Text(step.reason),
        )
    return table


def summary_table(outcomes: Sequence[Outcome]) -> Table:
    """One row per function: what happened, and why (skipped and failed say their reason)."""
    table = Table(title="summary", title_justify="left")
    table.add_column("function", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("what, or why")
    for outcome in outcomes:
        table.add_row(
            Text(outcome.function),
            Text(outcome.result, style=_STYLE[outcome.result]),
            Text(outcome.detail),
        )
    return table


def counts_line(outcomes: Iterable[Outcome]) -> str:
    """``attached 3, upgraded 1, unchanged 2, skipped 2, failed 0``, or that nothing changed."""
    counts = Counter(outcome.result for outcome in outcomes)
    shown = ", ".join(f"{result} {counts[result]}" for result in RESULTS if counts[result])
    changed = sum(counts[r] for r in ("attached", "upgraded", "detached"))
    if not changed and not counts["failed"]:
        return f"nothing changed: {shown or 'no function'}"
    return shown
