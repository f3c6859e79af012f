"""The report as a document: every figure the renderers show, and its stable JSON form.

``figures.report_build`` builds a ``Report``; ``reporting`` renders it (table, JSON, CSV, PNG).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from concurrency_observer import pricing
from concurrency_observer.figures.platform import (
    PlatformFigures,
    cold_starts_section,
    platform_section,
)
from concurrency_observer.figures.report_window import ReportWindow, iso
from concurrency_observer.figures.usage import (
    Distribution,
    LifetimeQuantiles,
    Reconciliation,
    Usage,
    combined,
)
from concurrency_observer.schema import INIT_ON_DEMAND

JSON_SCHEMA_VERSION: Final = 1
SCOPE_FUNCTION: Final = "function"
SCOPE_ALL_VERSIONS: Final = "all-versions"
SOURCE_RECORDS: Final = "records"
SOURCE_METRICS: Final = "metrics"


@dataclass(frozen=True)
class ObserverBill:
    """What the observer itself costs the function: its metrics and its records.

    ``metric_streams``: the custom metrics ListMetrics lists for the function in the namespace
    (those that received data in the last two weeks); their list price a month when each gets
    data every hour; the records read in the window and their size.
    """

    metric_streams: int
    records: int
    record_bytes: int
    log_group: str | None = None

    @property
    def metrics_usd_per_month(self) -> float:
        """The metrics' list price a month (each receiving data every hour)."""
        return pricing.metrics_usd_per_month(self.metric_streams)

    @property
    def records_usd(self) -> float:
        """What ingesting the window's records cost."""
        return pricing.records_usd(self.record_bytes)

    def to_dict(self) -> dict[str, Any]:
        """The ``observer_bill`` object of the JSON document."""
        return {
            "metric_streams": self.metric_streams,
            "metrics_usd_per_month": round(self.metrics_usd_per_month, 2),
            "records": self.records,
            "record_bytes": self.record_bytes,
            "records_usd": self.records_usd,
            "log_group": self.log_group,
        }


@dataclass(frozen=True)
class RecordsRead:
    """Which lines of the log group the report counted as the function's records, and which not.

    ``records``: the function's records (its own ``functionName``, and ``functionVersion`` when a
    version is asked); ``other_functions``: records in the group that belong to other functions;
    ``refused``: lines that looked like records and were not counted, by reason
    (``environment_record.REFUSED_REASONS``); ``duplicates``: records seen twice.
    """

    log_group: str
    records: int
    other_functions: int = 0
    refused: Mapping[str, int] = field(default_factory=dict)
    duplicates: int = 0
    filter_log_events_calls: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The ``records_read`` object of the JSON document."""
        return {
            "log_group": self.log_group,
            "records": self.records,
            "other_functions": self.other_functions,
            "refused": dict(sorted(self.refused.items())),
            "refused_total": sum(self.refused.values()),
            "duplicates": self.duplicates,
            "filter_log_events_calls": self.filter_log_events_calls,
        }


@dataclass(frozen=True)
class LivePoint:
    """Environments alive at the end of the period starting at ``timestamp``."""

    timestamp: datetime
    total: int
    by_init_type: Mapping[str, int] = field(default_factory=dict)
    # The most alive at once during the period (exact from the records); None without records.
    peak: int | None = None


@dataclass(frozen=True)
class Report:
    """Every figure the renderers show; ``to_dict()`` is the JSON form."""

    function_name: str
    version: str | None
    namespace: str
    window: ReportWindow
    provisioned: int | None
    breakdown_scope: str
    inits_total: int
    shutdowns_total: int
    inits_by_type: Mapping[str, int]
    shutdowns_by_reason: Mapping[str, int]
    live_at_start: int
    live: tuple[LivePoint, ...]
    lifetime: Distribution
    invocations: Distribution
    idle_time: Distribution
    time_to_first_invoke: Distribution
    has_data: bool
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    # Why the environments exist (FirstInvoke classes), per init type; all versions.
    usage_by_init_type: Mapping[str, Usage] = field(default_factory=dict)
    lifetime_quantiles: LifetimeQuantiles | None = None
    lifetime_survival: tuple[tuple[float, float], ...] = ()
    reconciliation: Reconciliation | None = None
    # Set by ``report --cross-check`` (aws.cross_check.CrossCheck.to_dict()).
    cross_check: Mapping[str, Any] | None = None
    # Where the per-environment figures came from: SOURCE_RECORDS or SOURCE_METRICS.
    figures_source: str = SOURCE_METRICS
    metric_profiles: tuple[str, ...] = ()  # lean, full: the metrics the function's observer wrote
    observer_bill: ObserverBill | None = None
    # The platform's account from the records (figures.platform): None without records.
    platform: PlatformFigures | None = None
    # Which lines were read as the function's records (None: the records were not read).
    records_read: RecordsRead | None = None

    @property
    def init_types(self) -> list[str]:
        """The init types the live series is split by (none when reporting one version)."""
        types: set[str] = set()
        for point in self.live:
            types.update(point.by_init_type)
        return sorted(types)

    @property
    def live_peak(self) -> int:
        """The most environments alive at once: exact with records, else at period ends."""
        return max(
            (point.total if point.peak is None else point.peak for point in self.live),
            default=self.live_at_start,
        )

    @property
    def live_peak_at(self) -> datetime | None:
        """The start of the first period where the peak was reached."""
        peak = self.live_peak
        return next(
            (
                point.timestamp
                for point in self.live
                if (point.total if point.peak is None else point.peak) == peak
            ),
            None,
        )

    @property
    def live_current(self) -> int:
        """Environments alive at the end of the window (now, unless ``--end`` is in the past)."""
        return self.live[-1].total if self.live else self.live_at_start

    @property
    def usage(self) -> Usage:
        """Every init type's usage summed."""
        return combined(self.usage_by_init_type.values())

    @property
    def proactive_share(self) -> float | None:
        """On-demand environments first invoked after the threshold over classified on-demand."""
        on_demand = self.usage_by_init_type.get(INIT_ON_DEMAND)
        return on_demand.delayed_share if on_demand is not None else None

    @property
    def peak_to_provisioned(self) -> float | None:
        """Peak live environments per provisioned environment requested."""
        return self.live_peak / self.provisioned if self.provisioned else None

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON document. Keys (times are ISO 8601 UTC, ``...Z``):

        - ``schema_version`` (1), ``function``, ``version`` (null: all versions), ``namespace``
        - ``window``: ``start``, ``end``, ``period_seconds``, ``lookback_start``
        - ``breakdown_scope``: ``function`` or ``all-versions`` (the by-type/by-reason counts
          cover every version of the function even when ``version`` is set)
        - ``inits``: ``total``, ``by_init_type`` {type: count}
        - ``shutdowns``: ``total``, ``by_reason`` {reason: count}
        - ``figures_source``: ``records`` (the environment records) or ``metrics`` (no records
          found: an older layer); ``metric_profiles``: the metric profiles seen (lean, full)
        - ``live``: ``at_start``, ``peak`` (the most alive at once: exact with records, else at
          period ends), ``peak_at``, ``current``, ``series``: a list of {``timestamp``,
          ``total`` (alive at the period's end), ``peak`` (most alive at once in the period,
          null without records), ``by_init_type`` {type: count}}, one per period
        - ``lifetime_seconds``, ``idle_time_seconds``, ``time_to_first_invoke_seconds``,
          ``invocations_per_environment``: {``count``, ``mean``, ``max``, ``total``}
        - ``provisioned``: null, or {``requested``, ``peak_ratio``}
        - ``environments_by_init_type``: {type: {``created``, ``shut_down``, ``never_invoked``,
          ``invoked_promptly``, ``invoked_delayed``, ``unclassified``, ``never_invoked_share``,
          ``invoked_delayed_share``}}, the classes counted over the environments that shut down
          in the window (all versions)
        - ``shares``: {``never_invoked``, ``proactive``} (null when nothing was classified)
        - ``lifetime_quantiles``: null, or {``source``, ``p50``, ``p90``, ``p99``}
        - ``lifetime_survival``: a list of {``seconds``, ``surviving_share``}
        - ``provisioned_concurrency``: null, or the reconciliation {``source``, ``requested``,
          ``allocated``, ``environments_created``, ``peak_live``, ``peak_to_requested``,
          ``shut_down``, ``ever_invoked``, ``never_invoked``, ``unclassified``, ``replaced``,
          ``replaced_per_hour``}
        - ``cross_check``: null, or what ``--cross-check`` found (aws.cross_check)
        - ``observer_bill``: null, or {``metric_streams``, ``metrics_usd_per_month``,
          ``records``, ``record_bytes``, ``records_usd``, ``log_group``}
        - ``records_read``: null (records not read), or {``log_group``, ``records`` (the
          function's), ``other_functions`` (records in the group of other functions, not
          counted), ``refused`` {reason: lines}, ``refused_total``, ``duplicates``,
          ``filter_log_events_calls``}
        - ``cold_starts``: null (no records), or {``felt`` (on-demand inits invoked promptly),
          ``invocations`` (AWS/Lambda ``Invocations`` in the window, null when unknown),
          ``share`` (felt / invocations), ``init_duration_ms`` (null, or {``count``, ``p50``,
          ``p90``, ``p99``, ``max``}), ``not_waited_for`` {why: count}}
        - ``platform``: null (no records), or {``environments``, ``with_telemetry``,
          ``init_duration_ms_by_init_type`` {type: quantiles}, ``failed_inits`` {``total``,
          ``by_error_type``, ``by_phase``}, ``restore_duration_ms`` (null or quantiles),
          ``managed_instances`` [{``environment_id``, ``invocations``,
          ``max_concurrent_invocations``, ``availability_zone_id``}],
          ``environments_by_availability_zone`` {zone: count}, ``runtime_versions``
          {version: count}}
        - ``warnings``, ``notes``: lists of sentences
        """
        return {
            "schema_version": JSON_SCHEMA_VERSION,
            "function": self.function_name,
            "version": self.version,
            "namespace": self.namespace,
            "window": {
                "start": iso(self.window.start),
                "end": iso(self.window.end),
                "period_seconds": self.window.period,
                "lookback_start": iso(self.window.lookback_start),
            },
            "breakdown_scope": self.breakdown_scope,
            "inits": {"total": self.inits_total, "by_init_type": dict(self.inits_by_type)},
            "shutdowns": {
                "total": self.shutdowns_total,
                "by_reason": dict(self.shutdowns_by_reason),
            },
            "live": {
                "at_start": self.live_at_start,
                "peak": self.live_peak,
                "peak_at": iso(self.live_peak_at) if self.live_peak_at else None,
                "current": self.live_current,
                "series": [
                    {
                        "timestamp": iso(point.timestamp),
                        "total": point.total,
                        "peak": point.peak,
                        "by_init_type": dict(point.by_init_type),
                    }
                    for point in self.live
                ],
            },
            "lifetime_seconds": self.lifetime.to_dict(),
            "idle_time_seconds": self.idle_time.to_dict(),
            "time_to_first_invoke_seconds": self.time_to_first_invoke.to_dict(),
            "invocations_per_environment": self.invocations.to_dict(),
            "provisioned": None
            if self.provisioned is None
            else {"requested": self.provisioned, "peak_ratio": self.peak_to_provisioned},
            "environments_by_init_type": {
                init_type: usage.to_dict() for init_type, usage in self.usage_by_init_type.items()
            },
            "shares": {
                "never_invoked": self.usage.never_invoked_share,
                "proactive": self.proactive_share,
            },
            "lifetime_quantiles": None
            if self.lifetime_quantiles is None
            else self.lifetime_quantiles.to_dict(),
            "lifetime_survival": [
                {"seconds": seconds, "surviving_share": share}
                for seconds, share in self.lifetime_survival
            ],
            "provisioned_concurrency": None
            if self.reconciliation is None
            else self.reconciliation.to_dict(),
            "cross_check": None if self.cross_check is None else dict(self.cross_check),
            "figures_source": self.figures_source,
            "metric_profiles": list(self.metric_profiles),
            "observer_bill": None if self.observer_bill is None else self.observer_bill.to_dict(),
            "records_read": None if self.records_read is None else self.records_read.to_dict(),
            "cold_starts": None if self.platform is None else cold_starts_section(self.platform),
            "platform": None if self.platform is None else platform_section(self.platform),
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }
