"""The platform's account as rich tables: how many invocations were cold starts, then the rest.

``report`` leads with the cold starts (the question asked most); the other tables follow the
per-environment figures. Built from ``figures.platform.PlatformFigures``; a table with
nothing to show is left out rather than printed empty.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table

from concurrency_observer.figures.platform import PlatformFigures, Quantiles

# How many Managed Instances environments the table lists (the JSON and CSV list them all).
MANAGED_ROWS = 20

_WHY = {
    "proactive": "proactive (on-demand, first invoked late)",
    "provisioned": "provisioned concurrency",
    "never-invoked": "never invoked",
    "managed-instances": "Lambda Managed Instances",
    "snapstart": "SnapStart restores",
    "unclassified": "class unknown (an engine that did not count INVOKE)",
}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _quantile_cells(found: Quantiles | None) -> tuple[str, str, str, str, str]:
    if found is None:
        return ("0", "-", "-", "-", "-")
    return (
        str(found.count),
        _ms(found.percentiles.get(50)),
        _ms(found.percentiles.get(90)),
        _ms(found.percentiles.get(99)),
        _ms(found.maximum),
    )


def cold_starts_table(figures: PlatformFigures) -> Table:
    """How many invocations were cold starts, beside the inits nobody waited for."""
    cold = figures.cold_starts
    table = Table(
        title="How many invocations were cold starts", show_header=False, title_justify="left"
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    share = "unknown" if cold.share is None else f"{cold.share:.2%}"
    invocations = "unknown" if cold.invocations is None else f"{cold.invocations:,.0f}"
    felt = "unknown" if cold.felt is None else str(cold.felt)
    over = ""
    if cold.unclassified:
        over = f", of the {cold.classified} of {cold.environments} with a known class"
    table.add_row(f"cold starts felt by a request (on-demand, invoked promptly{over})", felt)
    table.add_row("invocations (AWS/Lambda Invocations)", invocations)
    if cold.unclassified and cold.share is not None:
        share += f" (of the {cold.share_invocations:,.0f} invocations {cold.share_over} counted)"
    table.add_row("share of invocations that were cold starts", share)
    found = cold.init_duration
    if found is not None:
        p50, p90, p99 = (_ms(found.percentiles.get(p)) for p in (50, 90, 99))
        table.add_row(
            f"their init duration, ms (p50 / p90 / p99, of {found.count})",
            f"{p50} / {p90} / {p99}",
        )
    for why, count in cold.not_waited_for.items():
        table.add_row(f"inits nobody waited for: {_WHY.get(why, why)}", str(count))
    return table


def _counts(title: str, column: str, counts: Mapping[str, int]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(column)
    table.add_column("environments", justify="right")
    for name, count in counts.items():
        table.add_row(name, str(count))
    return table


def _sources(figures: PlatformFigures) -> str:
    """Where the init figures came from: the Telemetry API, the platform's lines, or both."""
    said = (
        f"{figures.with_telemetry} of {figures.environments} environments reported by the "
        "Telemetry API"
    )
    if figures.lines is not None and figures.lines.filled:
        said += f", {figures.lines.filled} completed from the platform's lines"
    return said


def platform_tables(figures: PlatformFigures) -> list[Table]:
    """Init durations per type, failed inits, restores, LMI environments, zones, runtimes."""
    tables: list[Table] = []
    if figures.init_duration_by_type or figures.restore_duration is not None:
        durations = Table(
            title=f"Init durations, ms ({_sources(figures)})",
            title_justify="left",
        )
        for name in ("init type", "inits", "p50", "p90", "p99", "max"):
            durations.add_column(name, justify="left" if name == "init type" else "right")
        for init_type, found in figures.init_duration_by_type.items():
            durations.add_row(init_type, *_quantile_cells(found))
        if figures.restore_duration is not None:
            durations.add_row("restores (SnapStart)", *_quantile_cells(figures.restore_duration))
        tables.append(durations)
    if figures.failed_inits:
        failed = _counts(
            f"Failed inits: {figures.failed_inits}", "error type", figures.failed_by_error_type
        )
        failed.caption = "by phase: " + ", ".join(
            f"{phase} {count}" for phase, count in figures.failed_by_phase.items()
        )
        tables.append(failed)
    if figures.managed_instances:
        managed = Table(title="Lambda Managed Instances, per environment", title_justify="left")
        for name in ("environment", "invocations", "most at once", "zone"):
            managed.add_column(name, justify="left" if name in ("environment", "zone") else "right")
        ordered = sorted(figures.managed_instances, key=lambda m: -(m.invocations or 0))
        for environment in ordered[:MANAGED_ROWS]:
            managed.add_row(
                environment.environment_id,
                "-" if environment.invocations is None else str(environment.invocations),
                "-" if environment.max_concurrent is None else str(environment.max_concurrent),
                environment.availability_zone or "-",
            )
        if len(ordered) > MANAGED_ROWS:
            managed.caption = f"the {MANAGED_ROWS} busiest of {len(ordered)} (all in JSON/CSV)"
        tables.append(managed)
    if set(figures.environments_by_zone) - {"unknown"}:
        tables.append(
            _counts("Environments per Availability Zone", "zone", figures.environments_by_zone)
        )
    if figures.runtime_versions:
        tables.append(_counts("Runtime versions", "runtime version", figures.runtime_versions))
    return tables
