"""The report: what the extension's metrics and environment records say about a function.

Four steps, each usable alone (``simulate`` passes clients pointed at its moto server):

1. ``resolve_window(...) -> ReportWindow`` (``figures.report_window``): the time window, aligned to
   the period, with a look-back before the start for the live series.
2. ``fetch_metrics(cloudwatch, request) -> FetchedMetrics`` (``aws.report_metrics``): ListMetrics,
   then GetMetricData for the lean ``EnvironmentDelta`` and the full profile's metrics.
3. ``read_records(logs, log_group, start, end) -> RecordScan`` (``aws.records``): the environment
   records of the environments that shut down in the window (FilterLogEvents).
4. ``build_report(request, fetched, scan) -> Report`` (``figures.report_build``): pure; no AWS,
   testable by hand. Its parts: ``figures.report_counts`` (inits and shutdowns per period),
   ``figures.live_series``, ``figures.report_usage_build`` (the per-environment figures and the
   reconciliation) and ``figures.report_notes`` (the notes, warnings and empty message).

``read_report(cloudwatch, request, logs=...)`` runs 2 to 4 and raises ``NoMetricsError`` when
there is nothing to report. ``Report.to_dict()`` is the stable JSON document.

Where each figure comes from, and the fallback without records: ``figures.report_build``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from concurrency_observer import environment_record as rec
from concurrency_observer.aws import platform_invocations
from concurrency_observer.aws.lambda_invocations import lambda_invocations
from concurrency_observer.aws.records import default_log_group, read_records
from concurrency_observer.aws.report_metrics import (
    fetch_lifetime_percentiles,
    fetch_metrics,
    plan_percentile_queries,
    plan_queries,
)
from concurrency_observer.errors import AwsError, UserError
from concurrency_observer.figures.metric_series import (
    DISTRIBUTION_METRICS,
    MAXIMUM,
    SAMPLE_COUNT,
    SUM,
    FetchedMetrics,
    SeriesKey,
)
from concurrency_observer.figures.record_scan import RecordScan
from concurrency_observer.figures.report_build import build_report
from concurrency_observer.figures.report_document import (
    JSON_SCHEMA_VERSION,
    SCOPE_ALL_VERSIONS,
    SCOPE_FUNCTION,
    LivePoint,
    Report,
)
from concurrency_observer.figures.report_notes import empty_message
from concurrency_observer.figures.report_window import (
    HIGH_RESOLUTION_PERIODS,
    ReportRequest,
    ReportWindow,
    iso,
    resolve_window,
)
from concurrency_observer.figures.usage import Distribution

__all__ = [
    "DISTRIBUTION_METRICS",
    "HIGH_RESOLUTION_PERIODS",
    "JSON_SCHEMA_VERSION",
    "MAXIMUM",
    "SAMPLE_COUNT",
    "SCOPE_ALL_VERSIONS",
    "SCOPE_FUNCTION",
    "SUM",
    "Distribution",
    "FetchedMetrics",
    "LivePoint",
    "NoMetricsError",
    "Report",
    "ReportRequest",
    "ReportWindow",
    "SeriesKey",
    "build_report",
    "fetch_lifetime_percentiles",
    "fetch_metrics",
    "iso",
    "plan_percentile_queries",
    "plan_queries",
    "read_report",
    "resolve_window",
]


class NoMetricsError(UserError):
    """There is no concurrency-observer data for the function in the window (or at all)."""


def scan_records(logs: Any, request: ReportRequest, log_group: str | None = None) -> RecordScan:
    """The records of the environments that shut down in the request's window (FilterLogEvents).

    From the window's start: an environment alive then has its record at its shutdown, later.
    Only the function's own records (``RecordScan.of_function``): a shared group holds others'.
    """
    group = log_group or default_log_group(request.function_name)
    scan = read_records(
        logs, group, request.window.start, request.window.end, platform_lines=True
    ).of_function(request.function_name, request.version)
    return with_report_counts(logs, scan)


def with_report_counts(logs: Any, scan: RecordScan) -> RecordScan:
    """The scan with the REPORT lines counted, by a second scan of their streams only, for the
    records that did not count their invocations (``aws.platform_invocations``)."""
    streams = platform_invocations.uncounted_streams(scan.records, scan.log_streams)
    if not streams or scan.missing_group:
        return scan
    since = min(_moment_ms(r[rec.INIT_TIME]) for r in scan.records)
    until = max(_moment_ms(r[rec.SHUTDOWN_TIME]) for r in scan.records)
    counts = platform_invocations.count_reports(logs, scan.log_group, streams, since, until)
    platform = replace(
        scan.platform,
        reports_by_stream=counts.by_stream,
        report_calls=counts.calls,
        report_bytes=counts.bytes_returned,
    )
    return replace(scan, platform=platform)


def _moment_ms(epoch_ms: Any) -> datetime:
    return datetime.fromtimestamp(float(epoch_ms) / 1000, timezone.utc)


def read_report(
    cloudwatch: Any,
    request: ReportRequest,
    *,
    logs: Any = None,
    log_group: str | None = None,
) -> Report:
    """Read the records (with ``logs``) and the metrics, build the report.

    ``NoMetricsError`` when there is nothing to show.
    """
    scan, unread = None, None
    if logs is not None:
        try:
            scan = scan_records(logs, request, log_group)
        except AwsError as error:  # no logs:FilterLogEvents, say: the metrics still answer
            unread = f"environment records not read ({error}): figures from the metrics only"
    fetched = fetch_metrics(cloudwatch, request, percentiles=not (scan and scan.found))
    invocations = lambda_invocations(cloudwatch, request) if scan and scan.found else None
    report = build_report(request, fetched, scan, invocations)
    if not report.has_data:
        raise NoMetricsError(empty_message(request, fetched))
    return report if unread is None else replace(report, notes=(*report.notes, unread))
