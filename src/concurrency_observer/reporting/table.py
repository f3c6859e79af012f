"""The report as rich tables, for people reading a terminal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from concurrency_observer.figures.report_document import SCOPE_ALL_VERSIONS, Report
from concurrency_observer.figures.usage import Distribution
from concurrency_observer.reporting.platform_tables import cold_starts_table, platform_tables

_SPARK_BLOCKS = "▁▂▃▄▅▆▇█"
_SPARK_WIDTH = 60


def _time(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def sparkline(values: Sequence[int], width: int = _SPARK_WIDTH) -> str:
    """``values`` as block characters, at most ``width`` wide (a block shows its bucket's max)."""
    if not values:
        return ""
    size = max(1, -(-len(values) // width))  # ceil: periods per character
    buckets = [max(values[i : i + size]) for i in range(0, len(values), size)]
    low, high = min(0, *buckets), max(buckets)
    span = (high - low) or 1
    return "".join(
        _SPARK_BLOCKS[round((v - low) / span * (len(_SPARK_BLOCKS) - 1))] for v in buckets
    )


def _environments_table(report: Report) -> Table:
    table = Table(title="Execution environments", show_header=False, title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("created (inits)", str(report.inits_total))
    table.add_row("shut down", str(report.shutdowns_total))
    table.add_row("live at window start", str(report.live_at_start))
    exact = (
        "most at once, from the records"
        if report.figures_source == "records"
        else "at a period end"
    )
    table.add_row(f"peak live ({exact})", f"{report.live_peak} at {_time(report.live_peak_at)}")
    table.add_row("live at window end", str(report.live_current))
    if report.provisioned is not None:
        table.add_row("provisioned concurrency requested", str(report.provisioned))
        table.add_row("peak live / provisioned", _number(report.peak_to_provisioned, 2))
    return table


def _counts_table(title: str, column: str, counts: Mapping[str, int], caption: str) -> Table:
    table = Table(title=title, title_justify="left", caption=caption or None)
    table.add_column(column)
    table.add_column("environments", justify="right")
    for name, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        table.add_row(name, str(count))
    if not counts:
        table.add_row("(none)", "0")
    return table


def _per_environment_table(report: Report) -> Table:
    table = Table(title="Per environment, at shutdown", title_justify="left")
    for name in ("figure", "environments", "mean", "max"):
        table.add_column(name, justify="left" if name == "figure" else "right")
    rows: list[tuple[str, Distribution, int]] = [
        ("lifetime (s)", report.lifetime, 1),
        ("idle time (s)", report.idle_time, 1),
        ("time to first invoke (s)", report.time_to_first_invoke, 2),
        ("invocations", report.invocations, 1),
    ]
    for label, figure, digits in rows:
        table.add_row(
            label, str(figure.count), _number(figure.mean, digits), _number(figure.maximum, digits)
        )
    counted = report.invocations.count
    table.caption = (
        f"invocations in total: {report.invocations.total:,.0f}"
        if counted
        else "invocations in total: unknown (no record counted them)"
    )
    return table


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _usage_table(report: Report) -> Table:
    table = Table(
        title="Why the environments exist (classes counted at shutdown, all versions)",
        title_justify="left",
    )
    table.add_column("init type", no_wrap=True)
    # Short headers, nothing wrapped: the table fits an 80-column terminal.
    for name in ("created", "ended", "never", "prompt", "late", "unknown"):
        table.add_column(name, justify="right", no_wrap=True)
    for init_type, usage in sorted(report.usage_by_init_type.items()):
        table.add_row(
            init_type,
            str(usage.created),
            str(usage.shut_down),
            str(usage.never),
            str(usage.prompt),
            str(usage.delayed),
            str(usage.unclassified),
        )
    table.caption = (
        f"never-invoked share {_share(report.usage.never_invoked_share)}, proactive share of "
        f"on-demand {_share(report.proactive_share)}. Of the environments that ended: never "
        "invoked, first invoked within (prompt) or after (late) the extension's "
        "CONCURRENCY_OBSERVER_PROMPT_THRESHOLD_MS (10 s by default; a late on-demand "
        "environment is a proactive init), or unknown (ran SHUTDOWN-only)"
    )
    return table


def _reconciliation_table(report: Report) -> Table | None:
    pc = report.reconciliation
    if pc is None:
        return None
    table = Table(
        title="Provisioned concurrency: requested to replaced",
        show_header=False,
        title_justify="left",
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    source = {"lambda-api": " (Lambda configuration, now)", "option": " (--provisioned)"}
    table.add_row("requested" + source.get(pc.source or "", ""), _number(pc.requested, 0))
    table.add_row("allocated", _number(pc.allocated, 0))
    table.add_row("PC environments created", str(pc.environments_created))
    table.add_row("peak live PC environments", str(pc.peak_live))
    table.add_row("ever invoked (of those shut down)", f"{pc.ever_invoked} of {pc.shut_down}")
    table.add_row("replaced (recycled) per hour", _number(pc.replaced_per_hour, 1))
    return table


def _quantiles_line(report: Report) -> Text | None:
    quantiles = report.lifetime_quantiles
    if quantiles is None:
        return None
    shown = ", ".join(
        f"{name} {_number(value, 1)}"
        for name, value in quantiles.to_dict().items()
        if name != "source"
    )
    return Text.assemble(("lifetime quantiles (s): ", "bold"), f"{shown}  [{quantiles.source}]")


def report_renderable(report: Report) -> RenderableType:
    """Every table of the report, with its heading, warnings and notes, as one rich renderable."""
    who = report.function_name + (f" version {report.version}" if report.version else "")
    window = report.window
    heading = Text.assemble(
        ("concurrency-observer report: ", "bold"),
        (who, "bold cyan"),
        f"  (namespace {report.namespace})\n",
        f"{_time(window.start)} to {_time(window.end)}, period {window.period}s, "
        f"live series counted from {_time(window.lookback_start)}",
    )
    scope = "all versions of the function" if report.breakdown_scope == SCOPE_ALL_VERSIONS else ""
    parts: list[RenderableType] = [heading]
    if report.platform is not None:  # the question asked most comes first
        parts.append(cold_starts_table(report.platform))
    parts += [
        _environments_table(report),
        _counts_table("Inits by init type", "init type", report.inits_by_type, scope),
        _counts_table("Shutdowns by reason", "reason", report.shutdowns_by_reason, scope),
        _per_environment_table(report),
    ]
    if report.platform is not None:
        parts.extend(platform_tables(report.platform))
    optional = [
        _quantiles_line(report),
        _usage_table(report) if report.usage_by_init_type else None,
    ]
    optional.append(_reconciliation_table(report))
    parts.extend(part for part in optional if part is not None)
    if report.cross_check is not None:
        parts.append(_cross_check_table(report.cross_check))
    if report.observer_bill is not None:
        parts.append(_bill_table(report))
    parts.append(
        Text.assemble(("live environments: ", "bold"), sparkline([p.total for p in report.live]))
    )
    parts.extend(Text(f"warning: {warning}", style="yellow") for warning in report.warnings)
    parts.extend(Text(f"note: {note}", style="dim") for note in report.notes)
    return Group(*parts)


def _bill_table(report: Report) -> Table:
    bill = report.observer_bill
    assert bill is not None
    table = Table(title="The observer's own bill", show_header=False, title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    profiles = ", ".join(report.metric_profiles) or "none seen"
    table.add_row(f"custom metrics for the function ({profiles})", str(bill.metric_streams))
    table.add_row("their list price a month", f"${bill.metrics_usd_per_month:,.2f}")
    table.add_row("environment records in the window", str(bill.records))
    table.add_row("their size (ingested as logs)", f"{bill.record_bytes:,} bytes")
    table.caption = (
        "metrics: those ListMetrics lists for the function (data in the last two weeks), each at "
        "$0.30 a month when it gets data every hour; records: $0.50 per GB ingested"
    )
    return table


def _cross_check_table(found: Mapping[str, object]) -> Table:
    table = Table(
        title=f"Cross-check against {found.get('log_group')}",
        show_header=False,
        title_justify="left",
    )
    table.add_column("count")
    table.add_column("value", justify="right")
    labels = {
        "environment_init": "EnvironmentInit (this extension)",
        "init_start_lines": "INIT_START lines (Logs Insights)",
        "log_streams_created": "log streams created in the window",
    }
    for key, label in labels.items():
        value = found.get(key)
        table.add_row(label, "-" if value is None else str(value))
    notes = found.get("notes")
    said = (
        "; ".join(str(note) for note in notes) + ". " if isinstance(notes, list) and notes else ""
    )
    table.caption = said + "They can differ legitimately: see docs/report.md, --cross-check"
    return table


def print_report(report: Report, console: Console | None = None) -> None:
    """Print the tables to ``console`` (default: standard output)."""
    (console or Console()).print(report_renderable(report))
