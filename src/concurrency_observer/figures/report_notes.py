"""What the report says in words: its notes, its look-back warnings and the message when there
is nothing to report. Pure; each is one line a reader can act on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from concurrency_observer.figures import records as record_figures
from concurrency_observer.figures.live_series import Live
from concurrency_observer.figures.metric_series import MAXIMUM, FetchedMetrics, Series, SeriesKey
from concurrency_observer.figures.record_scan import RecordScan
from concurrency_observer.figures.report_counts import Counts, Grid
from concurrency_observer.figures.report_document import SOURCE_METRICS, Report
from concurrency_observer.figures.report_window import ReportRequest, iso
from concurrency_observer.figures.usage import QUANTILES_FROM_CLOUDWATCH, Distribution
from concurrency_observer.schema import ENVIRONMENT_LIFETIME, METRICS_LEAN


def refused_note(refused: Mapping[str, int]) -> str | None:
    """One line: how many lines looked like records and were refused, by reason; None if none."""
    total = sum(refused.values())
    if not total:
        return None
    reasons = ", ".join(f"{count} {why}" for why, count in sorted(refused.items()))
    lines = "line" if total == 1 else "lines"
    return f"{total} {lines} that looked like environment records refused, not counted ({reasons})"


def other_functions_note(other_functions: int, log_group: str) -> str | None:
    """One line: how many records in the group were other functions'; None if none."""
    if not other_functions:
        return None
    records = "record" if other_functions == 1 else "records"
    return (
        f"{other_functions} environment {records} in {log_group} belong to other functions "
        "(their own functionName): not counted"
    )


def _record_notes(scan: RecordScan) -> list[str]:
    notes = [other_functions_note(scan.other_functions, scan.log_group), refused_note(scan.refused)]
    return [note for note in notes if note]


def source_notes(scan: RecordScan | None, from_records: bool, counts: Counts) -> list[str]:
    """Where the figures came from, and what the scan did not count."""
    if scan is None:  # not asked for (a caller without a Logs client)
        return []
    return [*_record_notes(scan), _source_note(scan, from_records, counts)]


def _source_note(scan: RecordScan, from_records: bool, counts: Counts) -> str:
    if from_records:
        return (
            f"per-environment figures, the live series and its peak from {len(scan.records)} "
            f"environment records in {scan.log_group} (FilterLogEvents, {scan.pages} calls); "
            "inits and shutdowns from the metrics"
        )
    where = f"none found in {scan.log_group}"
    if scan.missing_group:
        where = f"log group {scan.log_group} not found"
    if counts.profiles == {METRICS_LEAN}:
        return (
            f"no environment records ({where}): the lean metric gives inits, shutdowns and the "
            "live series only"
        )
    return (
        f"no environment records ({where}): figures from the metrics, as an older layer "
        "writes them (lifetimes approximated, live series at period ends)"
    )


def unknown_notes(report: Report, engines: Sequence[str]) -> list[str]:
    """Why a figure is unknown (null), said once; and any disagreement, never averaged away."""
    platform = report.platform
    if platform is None:
        return []
    notes = []
    cold = platform.cold_starts
    if cold.unclassified:
        notes.append(
            f"class unknown for {cold.unclassified} of {cold.environments} environments (an "
            f"engine that did not count INVOKE; engines here: {', '.join(engines)}): cold "
            f"starts felt and their share are over the {cold.classified} classified"
            + ("" if cold.felt is not None else ", so unknown")
            + "; invocations per environment, time to first invoke and idle figures are over "
            "the environments that counted them"
        )
    lines = platform.lines
    if lines is not None and not lines.streams and platform.with_telemetry < platform.environments:
        notes.append(
            "no platform lines (INIT_START, INIT_REPORT, REPORT) in the log group: init "
            "durations and statuses only from the records' Telemetry API fields (a JSON log "
            "format with a system log level of WARN drops those lines)"
        )
    if lines is not None and lines.disagreements:
        shown = "; ".join(d.describe() for d in lines.disagreements[:3])
        more = len(lines.disagreements) - 3
        notes.append(
            f"the records and the platform's lines disagree on {len(lines.disagreements)} "
            f"field(s), both kept (the record's in the figures): {shown}"
            + (f"; and {more} more (JSON: platform.platform_lines)" if more > 0 else "")
        )
    return notes


def usage_notes(report: Report, fetched: FetchedMetrics) -> list[str]:
    """Shutdowns without a FirstInvoke class, and lifetime quantiles that are approximated."""
    notes = []
    if any(usage.unclassified for usage in report.usage_by_init_type.values()):
        notes.append(
            "some shutdowns have no FirstInvoke class: environments that ran SHUTDOWN-only "
            "(CONCURRENCY_OBSERVER_EVENTS=SHUTDOWN, Managed Instances, the shell fallback), an "
            "older extension, or a record not (yet) delivered; never-invoked and proactive "
            "shares cover classified ones only"
        )
    quantiles = report.lifetime_quantiles
    if quantiles is not None and quantiles.source not in (
        QUANTILES_FROM_CLOUDWATCH,
        record_figures.QUANTILES_FROM_RECORDS,
    ):
        reason = fetched.percentile_note or "no percentiles"
        notes.append(
            f"lifetime quantiles approximated from per-period means ({reason}): exact only "
            "where each period holds one shutdown"
        )
    return notes


def lookback_warnings(
    request: ReportRequest,
    grid: Grid,
    live: Live,
    fetched: FetchedMetrics,
    lifetime: Distribution,
) -> list[str]:
    """A live series that the look-back start cut short (environments born before it)."""
    window = request.window
    warnings = []
    for label, values in [("", live.total), *((f" ({t})", v) for t, v in live.by_type.items())]:
        lowest = min(values, default=0)
        if lowest < 0:
            at = grid.starts[list(values).index(lowest)]
            warnings.append(
                f"more shutdowns than inits{label} by {iso(at)}: environments born before the "
                f"look-back start ({iso(window.lookback_start)}) are missing from the live "
                "series; use a longer --lookback"
            )
            break  # one warning says it; the per-type ones would repeat it
    maxima = fetched.series.get(SeriesKey(ENVIRONMENT_LIFETIME, MAXIMUM), Series()).points
    longest = max([v for _, v in maxima] + [lifetime.maximum or 0.0])
    if longest >= window.lookback.total_seconds():
        warnings.append(
            f"environments have lived up to {_duration(longest)}, longer than the look-back "
            f"({_duration(window.lookback.total_seconds())}): some alive at the window start may "
            "be missing from the live series; use a longer --lookback"
        )
    return warnings


def scope_notes(request: ReportRequest, report: Report, by_version: bool) -> list[str]:
    """What a version's report covers, and breakdowns that don't add up to their total."""
    notes = []
    if by_version:
        notes.append(
            f"version {request.version} from its environment records: environments of that "
            "version still alive at the window's end are not counted (the lean metric has no "
            "version dimension)"
        )
        return notes
    if request.version is not None:
        notes.append(
            f"inits by init type and shutdowns by reason cover all versions of "
            f"{request.function_name}: the metrics have no per-version breakdown "
            "(dimension sets [FunctionName, InitType] and [FunctionName, ShutdownReason]); "
            f"the totals and the live series are for version {request.version} only. The "
            "FirstInvoke classes and the provisioned-concurrency reconciliation also cover all "
            "versions ([FunctionName, InitType, FirstInvoke])"
        )
        return notes
    if sum(report.inits_by_type.values()) != report.inits_total:
        notes.append(
            "inits by init type don't add up to the total: ListMetrics may not list a new "
            "InitType yet (it can lag a few minutes)"
        )
    if report.figures_source == SOURCE_METRICS and (
        sum(report.shutdowns_by_reason.values()) != report.shutdowns_total
    ):
        notes.append(
            "shutdowns by reason don't add up to the total: ListMetrics may not list a new "
            "ShutdownReason yet (it can lag a few minutes)"
        )
    return notes


def _duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def empty_message(request: ReportRequest, fetched: FetchedMetrics) -> str:
    """Why there is nothing to report, and what to check (``NoMetricsError``'s message)."""
    window = request.window
    who = request.function_name + (f" version {request.version}" if request.version else "")
    if fetched.metrics_known:
        return (
            f"no data for {who} in namespace {request.namespace} between "
            f"{iso(window.lookback_start)} and {iso(window.end)} (metrics exist for the "
            "function: widen --since or move --start/--end)"
        )
    return (
        f"no concurrency-observer metrics or records for function {request.function_name} in "
        f"namespace {request.namespace}: check the function name, --namespace and --region, "
        "and that the layer is attached and the function has run"
    )
