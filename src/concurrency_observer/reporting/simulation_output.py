"""What ``simulate`` prints after a run: the report, the ground truth beside it, and the verdict.

``print_outcome(console, outcome)`` prints, for a finished ``local.outcome.Outcome``: the same
report as ``report`` (``print_report``), the control plane's classes of environments, the table
of every compared figure (``truth_table``: control plane against CloudWatch and the records, a
group per init type), the platform's account against the RIE's own init reports, notes on the
peak and the load, the verdict with what it compared (``cold_start_clause``), and the observer's
bill for the run. ``write_outcome_json(path, outcome)`` writes the same as JSON (``--json``).
Kept apart from the command (``cli/simulate.py``), as the study's outputs are
(``study_output.py``): rendering is not the command's business.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from concurrency_observer import pricing, schema
from concurrency_observer.errors import UserError
from concurrency_observer.figures.usage import nearest_rank
from concurrency_observer.local.platform_truth import TOLERANCE_MS
from concurrency_observer.local.simulation import COLD_STARTS_FELT, LAMBDA_INVOCATIONS, PEAK_LIVE
from concurrency_observer.reporting.table import print_report

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from concurrency_observer.figures.report_document import Report
    from concurrency_observer.local.fleet_snapshot import FleetSnapshot
    from concurrency_observer.local.outcome import Outcome
    from concurrency_observer.local.platform_truth import PlatformVerdict
    from concurrency_observer.local.simulation import Check, SimulationSettings


def print_outcome(out: Console, outcome: Outcome) -> None:
    """Print the report, the ground truth beside it, the verdict and the run's bill."""
    if outcome.report is not None:
        print_report(outcome.report, out)
    else:
        out.print(f"[yellow]no report:[/] {outcome.report_error}")
    out.print(_classes_table(outcome.truth, outcome.settings))
    out.print(truth_table(outcome))
    if outcome.platform is not None:
        out.print(_platform_table(outcome.platform))
    elif outcome.platform_not_compared:
        out.print(f"init durations and failed inits not compared: {outcome.platform_not_compared}")
    out.print(_truth_notes(outcome.truth, outcome.settings, outcome.report, outcome.checks))
    recording = outcome.settings.recording()
    summary = (
        f"{outcome.truth.started_total} environments started, {outcome.truth.stopped_total} "
        f"stopped, {outcome.truth.invocations_total} invocations"
    )
    if outcome.matches and recording.invocations and recording.classes:
        out.print(
            f"[green]verdict: MATCH[/]: {outcome.source} recorded exactly what the control plane "
            f"did ({summary}), per init type and in total, and how each environment was used "
            f"(never, prompt, delayed) per init type{cold_start_clause(outcome.checks)}"
            f"{peak_clause(outcome.checks)}"
        )
    elif outcome.matches and recording.invocations:
        out.print(
            f"[green]verdict: MATCH[/]: {outcome.source} recorded exactly what the control plane "
            f"did ({summary}), per init type and in total; not recorded here, so not compared: "
            f"how each environment was used ({recording.why})"
        )
    elif outcome.matches:
        out.print(
            f"[green]verdict: MATCH[/]: {outcome.source} recorded exactly the inits and "
            f"shutdowns the control plane did ({outcome.truth.started_total} environments "
            f"started, {outcome.truth.stopped_total} stopped), per init type and in total"
            f"{peak_clause(outcome.checks)}; "
            f"not recorded here, so not compared: invocations ({outcome.truth.invocations_total}) "
            f"and how each environment was used ({recording.why})"
        )
    else:
        wrong = [c for c in outcome.checks if not c.matches]
        platform = outcome.platform
        platform_detail = (
            []
            if platform is None or platform.matches
            else [
                f"init durations: {len(platform.recorded_durations_ms)} recorded, "
                f"{len(platform.truth.init_durations_ms)} reported by the RIE, largest gap "
                f"{platform.largest_gap_ms} ms; failed inits: recorded "
                f"{platform.recorded_failed}, truth {platform.truth.failed_inits}"
            ]
        )
        detail = "; ".join(
            platform_detail
            + [
                f"{c.metric} ({c.init_type or 'all'}"
                + (f", FirstInvoke {c.first_invoke}" if c.first_invoke else "")
                + f"): recorded {c.recorded:g}, truth {_truth_cell(c)}"
                for c in wrong
            ]
        )
        out.print(f"[red]verdict: MISMATCH[/] with the ground truth ({summary}): {detail}")
    out.print(_bill_line(outcome))
    out.print(f"[dim]wall time {outcome.wall_seconds:.1f}s[/]")


def write_outcome_json(path: Path, outcome: Outcome) -> None:
    """The ground truth, the checks, the verdict and the report as JSON; a clear error if not."""
    try:
        path.write_text(json.dumps(outcome.to_dict(), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from exc


def near_threshold_note(truth: FleetSnapshot, settings: SimulationSettings) -> str:
    """One line: the environments whose class either side of the threshold is right."""
    return (
        f"{truth.near_threshold} near the threshold, accepted either way: each first invoke came "
        "between the extension registering and INVOKE START (the RIE's lines) at the least and "
        "the init being sent and the function invoked (the control plane's clock) at the most, "
        f"and {settings.fleet.prompt_threshold:g}s lies between"
    )


def cold_start_clause(checks: Sequence[Check]) -> str:
    """ ", and the cold-start share (felt of invocations)" when both were compared."""
    totals = {c.metric: c.truth for c in checks if c.init_type is None}
    felt, invocations = totals.get(COLD_STARTS_FELT), totals.get(LAMBDA_INVOCATIONS)
    if felt is None or not invocations:
        return ""
    share = felt / invocations
    return f", and the cold-start share ({felt} of {invocations} invocations, {share:.2%})"


def peak_clause(checks: Sequence[Check]) -> str:
    """ ", and the peak live on the records' own instants (N)" when it was compared."""
    compared = next((c for c in checks if c.metric == PEAK_LIVE), None)
    if compared is None:
        return ""
    return f", and the peak live on the records' own instants ({_truth_cell(compared)})"


def _bill_line(outcome: Outcome) -> str:
    """The run's own bill: metric streams created (billed per month) and records written."""
    settings = outcome.settings
    where = (
        f"ListMetrics in namespace {settings.namespace}"
        if settings.sink == "cloudwatch"
        else "the EMF lines, as CloudWatch would extract them"
    )
    streams = outcome.metric_streams
    price = "" if streams is None else f", ${pricing.metrics_usd_per_month(streams):.2f}/month"
    lost = (
        f"; [red]{len(outcome.delivery_errors)}+ environments' output not delivered to the log "
        f"group: {outcome.delivery_errors[0]}[/]"
        if outcome.delivery_errors
        else ""
    )
    return (
        f"metric streams created: {streams} ({settings.metrics} profile; {where}{price} at list "
        f"price); environment records: {outcome.records}, {outcome.record_bytes} bytes{lost}"
    )


def _platform_table(platform: PlatformVerdict) -> Table:
    """Init durations and failed inits: the RIE's own reports beside the records."""
    table = Table(
        title="The platform's account: the RIE's init reports vs the records "
        f"(from {platform.source})",
        title_justify="left",
    )
    for name in ("figure", "the RIE reported", "recorded", ""):
        table.add_column(name, justify="left" if name == "figure" else "right", no_wrap=True)
    truth, recorded = platform.truth.init_durations_ms, platform.recorded_durations_ms
    gap = platform.largest_gap_ms
    same_count = len(truth) == len(recorded)
    table.add_row("inits with a duration", str(len(truth)), str(len(recorded)), _mark(same_count))
    for percent in (50, 90, 100):
        label = "max" if percent == 100 else f"p{percent}"
        found = [nearest_rank(list(values), percent) for values in (truth, recorded)]
        cells = ["-" if v is None else f"{v:.3f}" for v in found]
        table.add_row(f"init duration {label} (ms)", *cells, "")
    table.add_row(
        "largest gap, init by init (ms)",
        "",
        "-" if gap is None else f"{gap:.3f}",
        _mark(gap is not None and gap <= TOLERANCE_MS),
    )
    failed_ok = platform.recorded_failed == platform.truth.failed_inits
    table.add_row(
        "failed inits",
        str(platform.truth.failed_inits),
        str(platform.recorded_failed),
        _mark(failed_ok),
    )
    if platform.truth.lost:
        # Unknown in the record, not wrong: its extension went without the Telemetry API.
        table.add_row("inits without telemetry", str(platform.truth.lost), "-", "[dim]-[/]")
        table.caption = (
            f"{platform.truth.lost} init(s) not compared: the extension's Telemetry "
            "subscription got no answer in time (its INFO line says telemetry off), so its "
            "record has no platform figures"
        )
    return table


def _mark(ok: bool) -> str:
    return "[green]=[/]" if ok else "[red]≠[/]"


def truth_table(outcome: Outcome) -> Table:
    """Each figure beside the control plane's, grouped under a heading per init type (then
    "all init types"), so the figure's name keeps the width at 80 columns."""
    table = Table(title=f"Ground truth (control plane) vs {outcome.source}", title_justify="left")
    table.add_column("figure")
    for name in ("control plane", outcome.source, ""):
        table.add_column(name, justify="right", no_wrap=True)
    rows = [(c, f"{c.recorded:g}", _check_mark(c)) for c in outcome.checks]
    rows += [(c, "[dim]not recorded[/]", "[dim]-[/]") for c in outcome.unrecorded]
    scopes: list[str | None] = [*sorted({c.init_type for c, _, _ in rows if c.init_type}), None]
    for scope in scopes:
        mine = [row for row in rows if row[0].init_type == scope]
        if not mine:
            continue
        if table.row_count:
            table.add_section()
        table.add_row(f"[bold]{scope or 'all init types'}[/]")
        for check, recorded, mark in mine:
            table.add_row(f"  {check.label}", _truth_cell(check), recorded, mark)
    return table


def _truth_cell(check: Check) -> str:
    """The truth, or the range of right values where the control plane knows it within bounds."""
    if check.accepted is None:
        return str(check.truth)
    low, high = check.accepted
    return f"{low}-{high}"


def _check_mark(check: Check) -> str:
    """``=`` exactly equal, ``~`` within the bounds the truth is known to, ``≠`` otherwise."""
    if check.accepted is None or not check.matches:
        return _mark(check.matches)
    return "[green]~[/]"


def _classes_table(truth: FleetSnapshot, settings: SimulationSettings) -> Table:
    """Why each environment exists, per init type: the control plane's side of every class."""
    threshold = settings.fleet.prompt_threshold
    types = sorted(set(truth.started) | {t for t, _ in truth.first_invoke})
    table = Table(title="Why each environment exists (control plane)", title_justify="left")
    table.add_column("environments")
    for init_type in types:
        table.add_column(init_type, justify="right", no_wrap=True)
    table.add_column("all", justify="right")

    def row(label: str, counts: list[int | None]) -> None:
        known = [n for n in counts if n is not None]
        cells = ["-" if n is None else str(n) for n in counts]
        table.add_row(label, *cells, str(sum(known)))

    row("created (inits)", [truth.started.get(t, 0) for t in types])
    labels = {  # of those shut down: every one is, by the end of a run
        schema.FIRST_INVOKE_NEVER: "never invoked",
        schema.FIRST_INVOKE_PROMPT: f"prompt: 1st invoke <= {threshold:g}s",
        schema.FIRST_INVOKE_DELAYED: f"delayed: 1st invoke > {threshold:g}s",
    }
    for usage, label in labels.items():
        row(label, [truth.first_invoke.get((t, usage), 0) for t in types])
    provisioned = schema.INIT_PROVISIONED
    row(
        "initialized ahead of demand",
        [None if t == provisioned else truth.proactive for t in types],
    )
    if not settings.managed_instances:  # no provisioned concurrency there, so no recycling
        row(
            "replacements (recycled)",
            [truth.replacements if t == provisioned else None for t in types],
        )
    return table


def peak_note(truth: FleetSnapshot, report: Report | None, checks: Sequence[Check]) -> str:
    """The peak of live environments: the report's against the same instants, if compared,
    and the control plane's wider count as context."""
    wider = (
        f"the control plane {truth.peak_live} (from sending each init to the environment's "
        "exit: wider)"
    )
    if report is None:
        return f"peak live: the report none; {wider}"
    compared = next((c for c in checks if c.metric == PEAK_LIVE), None)
    if compared is None:
        source = (
            "from the records' instants"
            if report.figures_source == "records"
            else "at period ends, from the metric"
        )
        return f"peak live: the report {report.live_peak} ({source}), not compared; {wider}"
    if compared.accepted is None:
        same = f"{compared.truth}, exact"
    else:
        same = "{}-{}: each start known between INIT START and its registering".format(
            *compared.accepted
        )
    return (
        f"peak live: the report {report.live_peak} (from the records' instants); the same "
        f"instants by the RIE's lines (each extension's start to its SHUTDOWN) {same}; {wider}"
    )


def _truth_notes(
    truth: FleetSnapshot,
    settings: SimulationSettings,
    report: Report | None,
    checks: Sequence[Check] = (),
) -> RenderableType:
    counted = "the extension counts both" if settings.recording().invocations else "not recorded"
    lines = [
        f"invocations: {truth.served} from the load + {truth.warmups} held warm-ups let through "
        f"({counted}); "
        f"{truth.throttled} throttled (at --max-environments {settings.fleet.max_environments}), "
        f"{truth.failed} failed",
        f"environments: peak {truth.peak_live} live, {truth.idle_shutdowns} shut down after "
        f"{settings.fleet.idle_timeout:g}s idle, the rest at the end (staggered); "
        f"{truth.forced_shutdowns} had to be killed",
        peak_note(truth, report, checks)
        + "; the report's live series counts environments alive at the end of each 5-second "
        "period",
        f"ahead of demand: {truth.proactive} {settings.fleet.demand_init_type} inits"
        + (
            ""
            if settings.managed_instances
            else f"; recycling: {truth.replacements} provisioned replacements initialized, "
            f"{truth.recycled} old ones shut down"
        ),
    ]
    if settings.managed_instances:
        lines.append(
            f"managed instances: up to {settings.fleet.max_concurrency} invocations at once per "
            f"environment; at most {truth.peak_per_environment} were in one at once"
        )
    if truth.near_threshold and settings.recording().invocations:
        lines.append(near_threshold_note(truth, settings))
    lines.extend(f"error: {error}" for error in truth.errors[:5])
    return Text("\n".join(lines), style="dim")
