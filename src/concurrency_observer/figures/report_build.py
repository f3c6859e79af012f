"""``build_report(request, fetched, scan) -> Report``: the report from fetched series and records.

Pure: no AWS, no clock (``aws.report`` reads CloudWatch and the log group, then calls this; the
local harness calls it with what it read from its own moto server and log files).

Where each figure comes from, under either metric profile or both in turn:

- inits and shutdowns, per init type and in total: the metrics. Lean: ``(SampleCount + Sum) / 2``
  and ``(SampleCount - Sum) / 2`` of ``EnvironmentDelta``; full: ``EnvironmentInit`` and
  ``EnvironmentShutdown``; a function that ran both has both summed.
- everything else (shutdowns by reason, the FirstInvoke classes, lifetimes and their exact
  quantiles, invocations, idle time, time to first invoke): the records (``figures.records``).
- the live series: exactly from the records' init and shutdown instants, at period ends and as
  the most alive at once in each period, plus the environments the metric counts without a
  record yet (still alive at the end, or whose record was lost), per period.

Without records (an older layer, or no access to the log group) the report falls back to the
metric path as before the records existed, and says so: the live series is then the running sum
of inits minus shutdowns from the look-back start, at period ends (an environment born and gone
within one period never shows in it), and lifetimes come from CloudWatch's percentiles or are
approximated from per-period means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from concurrency_observer import environment_record as rec
from concurrency_observer.figures import platform_join
from concurrency_observer.figures import records as record_figures
from concurrency_observer.figures.live_series import live_from_metrics, live_from_records
from concurrency_observer.figures.metric_series import FetchedMetrics
from concurrency_observer.figures.platform import PlatformFigures, platform_figures
from concurrency_observer.figures.record_scan import RecordScan
from concurrency_observer.figures.records import Life, RecordFigures
from concurrency_observer.figures.report_counts import Grid, metric_counts, record_counts
from concurrency_observer.figures.report_document import (
    SCOPE_ALL_VERSIONS,
    SCOPE_FUNCTION,
    SOURCE_METRICS,
    SOURCE_RECORDS,
    LivePoint,
    ObserverBill,
    RecordsRead,
    Report,
)
from concurrency_observer.figures.report_notes import (
    lookback_warnings,
    scope_notes,
    source_notes,
    unknown_notes,
    usage_notes,
)
from concurrency_observer.figures.report_usage_build import (
    per_environment_from_metrics,
    per_environment_from_records,
    reconciliation,
)
from concurrency_observer.figures.report_window import ReportRequest, ReportWindow
from concurrency_observer.figures.usage import usage_from_classes
from concurrency_observer.schema import ENVIRONMENT_DELTA


def build_report(
    request: ReportRequest,
    fetched: FetchedMetrics,
    scan: RecordScan | None = None,
    invocations: float | None = None,
) -> Report:
    """Compute the report from fetched series and records (pure: no AWS, no clock).

    ``invocations``: AWS/Lambda's ``Invocations`` over the window, for the cold-start share.
    """
    window = request.window
    grid = Grid(window)
    # Whose record it is: only those whose own functionName (and functionVersion) say so.
    scan = scan.of_function(request.function_name, request.version) if scan else None
    scan, joined = with_platform_lines(scan)
    every = record_figures.lives(scan.records if scan else (), request.version)
    from_records = bool(every)
    by_version = from_records and request.version is not None
    counts = record_counts(every, grid) if by_version else metric_counts(request, fetched, grid)
    if from_records:
        live = live_from_records(every, counts, grid)
        figures = RecordFigures.of(every, window.start, window.end)
        per_environment = per_environment_from_records(figures)
    else:
        live = live_from_metrics(counts)
        per_environment = per_environment_from_metrics(fetched, grid)
    shown_by_type = live.by_type if request.version is None or by_version else {}
    first = grid.first
    points = tuple(
        LivePoint(
            grid.starts[i],
            live.total[i],
            {t: values[i] for t, values in shown_by_type.items()},
            None if live.peaks is None else live.peaks[i],
        )
        for i in range(first, len(grid.starts))
    )
    types = sorted(set(counts.inits_by_type) | set(per_environment.classes_by_type))
    inits_by_type = {t: grid.values_total(counts.inits_by_type.get(t, [0.0])) for t in types}
    usage_by_type = {
        t: usage_from_classes(
            inits_by_type[t],
            grid.values_total(counts.shutdowns_by_type.get(t, [0.0])),
            per_environment.classes_by_type.get(t, {}),
        )
        for t in types
    }
    has_metric_data = any(
        s.points
        for key, s in fetched.series.items()
        if key.dimension is None or key.metric == ENVIRONMENT_DELTA
    )
    report = Report(
        function_name=request.function_name,
        version=request.version,
        namespace=request.namespace,
        window=window,
        provisioned=request.provisioned,
        breakdown_scope=SCOPE_FUNCTION
        if request.version is None or by_version
        else SCOPE_ALL_VERSIONS,
        inits_total=grid.values_total(counts.inits),
        shutdowns_total=grid.values_total(counts.shutdowns),
        inits_by_type={t: n for t, n in inits_by_type.items() if n or t in counts.inits_by_type},
        shutdowns_by_reason=dict(per_environment.shutdowns_by_reason),
        live_at_start=live.total[first - 1] if first > 0 else 0,
        live=points,
        lifetime=per_environment.lifetime,
        invocations=per_environment.invocations,
        idle_time=per_environment.idle_time,
        time_to_first_invoke=per_environment.time_to_first_invoke,
        has_data=from_records or has_metric_data,
        usage_by_init_type=usage_by_type,
        lifetime_quantiles=per_environment.quantiles,
        lifetime_survival=per_environment.survival,
        reconciliation=reconciliation(request, usage_by_type, live, counts, first),
        figures_source=SOURCE_RECORDS if from_records else SOURCE_METRICS,
        metric_profiles=tuple(sorted(counts.profiles)),
        observer_bill=_bill(fetched, scan, every, window),
        platform=_platform(scan, every, window, invocations, joined) if from_records else None,
        records_read=_records_read(scan),
    )
    warnings = lookback_warnings(request, grid, live, fetched, per_environment.lifetime)
    notes = (
        scope_notes(request, report, by_version)
        + usage_notes(report, fetched)
        + source_notes(scan, from_records, counts)
        + unknown_notes(report, sorted({life.engine for life in every}))
    )
    return replace(report, warnings=tuple(warnings), notes=tuple(notes))


def _in_window(
    scan: RecordScan | None, every: Sequence[Life], window: ReportWindow
) -> list[Mapping[str, Any]]:
    """The records (dicts) of the environments in ``every`` that shut down in the window."""
    in_window = {
        life.environment_id for life in every if window.start <= life.shutdown < window.end
    }
    return [r for r in (scan.records if scan else ()) if str(r.get("environmentId")) in in_window]


def with_platform_lines(
    scan: RecordScan | None,
) -> tuple[RecordScan | None, platform_join.PlatformJoin | None]:
    """The scan with its records completed from the platform's lines (``figures.platform_join``),
    and what the join found; as it is when the scan did not ask for the lines."""
    if scan is None or not scan.platform_scanned:
        return scan, None
    found = platform_join.join(scan.records, scan.log_streams, scan.platform)
    return replace(scan, records=found.records), found


def _platform(
    scan: RecordScan | None,
    every: Sequence[Life],
    window: ReportWindow,
    invocations: float | None,
    joined: platform_join.PlatformJoin | None,
) -> PlatformFigures:
    """The platform's account over the window's records (figures.platform), completed from
    the platform's lines of their log streams when the scan read them."""
    return platform_figures(_in_window(scan, every, window), invocations, joined)


def _bill(
    fetched: FetchedMetrics, scan: RecordScan | None, every: Sequence[Life], window: ReportWindow
) -> ObserverBill:
    """The function's metrics and its own records in the window (never other functions')."""
    records = _in_window(scan, every, window)
    if scan and scan.record_sizes:
        sizes = scan.record_sizes
        record_bytes = sum(sizes.get(str(r[rec.ENVIRONMENT_ID]), 0) for r in records)
    else:  # a scan made by hand, without sizes per record: the window's share
        share = len(records) / len(scan.records) if scan and scan.records else 0.0
        record_bytes = round(scan.record_bytes * share) if scan else 0
    return ObserverBill(
        metric_streams=fetched.metrics_known,
        records=len(records),
        record_bytes=record_bytes,
        log_group=scan.log_group if scan else None,
    )


def _records_read(scan: RecordScan | None) -> RecordsRead | None:
    if scan is None:
        return None
    return RecordsRead(
        log_group=scan.log_group,
        records=len(scan.records),
        other_functions=scan.other_functions,
        refused=dict(scan.refused),
        duplicates=scan.duplicates,
        filter_log_events_calls=scan.pages,
    )
