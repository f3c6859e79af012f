"""What a simulation recorded, read back the way ``report`` reads it, and judged.

``read_back(simulation, truth, cloudwatch_url, logs_url)`` builds the report from what the run
left behind: the metrics (GetMetricData on the moto server, or, for the ``emf`` sink, the EMF lines
as CloudWatch would extract them) and the environment records (FilterLogEvents on the moto
server's Logs, where the harness delivered every environment's output as Lambda would). It then
compares the report's figures with the control plane's ground truth (``simulation.verdict_checks``)
and counts the distinct metric streams the run created, the figure a bill shows: ListMetrics in
the run's namespace for the function, or the (metric, dimensions) pairs of the EMF lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final

from concurrency_observer import schema
from concurrency_observer.aws.lambda_invocations import lambda_invocations
from concurrency_observer.aws.metrics import list_function_metrics
from concurrency_observer.aws.report import scan_records
from concurrency_observer.aws.report_metrics import fetch_metrics
from concurrency_observer.aws.session import aws_errors
from concurrency_observer.figures import records as record_figures
from concurrency_observer.figures.record_scan import RecordScan
from concurrency_observer.figures.report_build import build_report, with_platform_lines
from concurrency_observer.figures.report_document import SOURCE_RECORDS, Report
from concurrency_observer.local.emf_report import emf_points, fetch_from_emf
from concurrency_observer.local.fleet_snapshot import FleetSnapshot
from concurrency_observer.local.platform_truth import (
    PlatformVerdict,
    platform_truth,
    platform_verdict,
)
from concurrency_observer.local.setups import RUNTIME_BASH
from concurrency_observer.local.simulation import (
    RECORDS,
    Check,
    RecordedKey,
    Simulation,
    SimulationSettings,
    cold_start_checks,
    peak_checks,
    report_request,
    unrecorded_cold_starts,
    unrecorded_figures,
    verdict_checks,
)

_READ_ATTEMPTS: Final = 5  # an external CloudWatch is eventually consistent; moto answers at once


@dataclass
class Outcome:
    """Everything printed at the end, and written with ``--json``."""

    settings: SimulationSettings
    truth: FleetSnapshot
    source: str
    checks: list[Check]
    report: Report | None
    report_error: str | None
    started_at: datetime
    ended_at: datetime
    wall_seconds: float = 0.0
    # What the control plane knows and the extension does not record in this setup (not compared).
    unrecorded: list[Check] = field(default_factory=list)
    metric_streams: int | None = None  # distinct metrics the run created (what a bill counts)
    records: int = 0
    record_bytes: int = 0
    # Environments whose output the harness could not deliver to the log group (first errors).
    delivery_errors: list[str] = field(default_factory=list)
    # Init durations and failed inits against the RIE's INIT REPORTs (None: not compared).
    platform: PlatformVerdict | None = None
    # Why init durations and failed inits are not compared, when they are not.
    platform_not_compared: str | None = None

    @property
    def matches(self) -> bool:
        """Every checked figure equal (failed invocations show in the notes, not here)."""
        platform_ok = self.platform is None or self.platform.matches
        return platform_ok and all(check.matches for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "settings": self.settings.to_dict(),
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "wall_seconds": round(self.wall_seconds, 3),
            "ground_truth": self.truth.to_dict(),
            "recorded_from": self.source,
            "metric_streams": self.metric_streams,
            "records": {
                "count": self.records,
                "bytes": self.record_bytes,
                "delivery_errors": self.delivery_errors,
            },
            "checks": [check.to_dict() for check in self.checks],
            "verdict": "match" if self.matches else "mismatch",
            "not_recorded": {
                "why": self.settings.recording().why or None,
                "figures": [
                    {k: v for k, v in c.to_dict().items() if k not in ("recorded", "matches")}
                    for c in self.unrecorded
                ],
            },
            "platform": None if self.platform is None else self.platform.to_dict(),
            "platform_not_compared": self.platform_not_compared,
            "report": None if self.report is None else self.report.to_dict(),
            "report_error": self.report_error,
        }


def recorded_from_report(report: Report, scan: RecordScan | None) -> dict[RecordedKey, float]:
    """The verdict's figures as the report gives them, keyed as ``verdict_checks`` expects.

    Inits and shutdowns per init type come from the metrics (either profile); the FirstInvoke
    classes, the invocations and the records per init type from the records.
    """
    window = report.window
    lives = record_figures.lives(scan.records if scan else ())
    figures = record_figures.RecordFigures.of(lives, window.start, window.end)
    recorded: dict[RecordedKey, float] = {
        (schema.ENVIRONMENT_INIT, None): report.inits_total,
        (schema.ENVIRONMENT_SHUTDOWN, None): report.shutdowns_total,
        (schema.ENVIRONMENT_INVOCATIONS, None): report.invocations.total,
        (RECORDS, None): len(figures.lives),
    }
    for init_type, count in report.inits_by_type.items():
        recorded[(schema.ENVIRONMENT_INIT, init_type)] = count
    for init_type, usage in report.usage_by_init_type.items():
        recorded[(schema.ENVIRONMENT_SHUTDOWN, init_type)] = usage.shut_down
        for usage_class in schema.FIRST_INVOKE_CLASSES:
            count = figures.classes_by_type.get(init_type, {}).get(usage_class, 0)
            recorded[(schema.ENVIRONMENT_SHUTDOWN, init_type, usage_class)] = count
    for init_type, count in figures.invocations_by_type.items():
        recorded[(schema.ENVIRONMENT_INVOCATIONS, init_type)] = count
    for init_type, count in figures.shutdowns_by_type.items():
        recorded[(RECORDS, init_type)] = count
    return recorded


def emf_streams(documents: Iterable[Mapping[str, Any]], namespace: str, function_name: str) -> int:
    """The distinct metrics CloudWatch would extract from the EMF lines for the function."""
    return len(
        {
            (point.metric, point.dimensions)
            for point in emf_points(documents, namespace)
            if dict(point.dimensions).get(schema.FUNCTION_NAME) == function_name
        }
    )


def logs_client(endpoint_url: str) -> Any:
    """A CloudWatch Logs client for the local endpoint (dummy credentials, as the metrics')."""
    from concurrency_observer.local.cloudwatch import client_for  # noqa: PLC0415

    return client_for("logs", endpoint_url)


def read_back(
    simulation: Simulation,
    truth: FleetSnapshot,
    cloudwatch_url: str | None,
    logs_url: str | None,
) -> Outcome:
    """Read the metrics and the records, build the report, compare it with the truth."""
    from concurrency_observer.local.cloudwatch import cloudwatch_client  # noqa: PLC0415

    settings = simulation.settings
    since = simulation.started_at
    until = simulation.ended_at or datetime.now(timezone.utc)
    request = report_request(settings, since, until)
    logs = logs_client(logs_url) if logs_url is not None else None
    # Lambda's own Invocations, where the harness put them (local.lambda_metrics).
    lambda_url = cloudwatch_url or logs_url
    lambda_metrics = cloudwatch_client(lambda_url) if lambda_url is not None else None
    if cloudwatch_url is not None:
        cloudwatch = cloudwatch_client(cloudwatch_url)

        def fetch(found: bool) -> Any:
            return fetch_metrics(cloudwatch, request, percentiles=not found)

        def streams() -> int:
            with aws_errors("cloudwatch:ListMetrics"):
                known = list_function_metrics(
                    cloudwatch, settings.namespace, settings.function_name
                )
            return len(known)

        source = "CloudWatch + records"
    else:
        documents = simulation.emf_documents()

        def fetch(found: bool) -> Any:
            return fetch_from_emf(documents, request)

        def streams() -> int:
            return emf_streams(documents, settings.namespace, settings.function_name)

        source = "EMF lines + records"

    def read() -> tuple[Report, RecordScan | None, list[Check]]:
        scan = scan_records(logs, request) if logs is not None else None
        found = bool(scan and scan.found)
        invocations = (
            lambda_invocations(lambda_metrics, request) if found and lambda_metrics else None
        )
        report = build_report(request, fetch(found), scan, invocations)
        # The records as the report counted them: completed from the platform's lines.
        recorded = recorded_from_report(report, with_platform_lines(scan)[0])
        recording = settings.recording()
        cold = report.platform.cold_starts if report.platform is not None else None
        checks = verdict_checks(truth, recorded, recording)
        checks += cold_start_checks(truth, cold, recording)
        return report, scan, checks + peak_checks(truth, _peak_from_records(report))

    report, scan, checks = _read_until_settled(read)
    platform = _platform_verdict(simulation, scan)
    return Outcome(
        settings=settings,
        truth=truth,
        source=source,
        checks=checks,
        report=report if report.has_data else None,
        report_error=None if report.has_data else "no metrics nor records for the function",
        started_at=since,
        ended_at=until,
        unrecorded=unrecorded_figures(truth, settings.recording())
        + unrecorded_cold_starts(truth, settings.recording()),
        metric_streams=streams(),
        records=report.observer_bill.records if report.observer_bill else 0,
        record_bytes=report.observer_bill.record_bytes if report.observer_bill else 0,
        delivery_errors=list(simulation.delivery.errors[:5]) if simulation.delivery else [],
        platform=platform,
        platform_not_compared=None if platform is not None else _why_not_compared(settings),
    )


def _why_not_compared(settings: SimulationSettings) -> str:
    """Why no source gives the records' init durations in this setup."""
    if settings.managed_instances:
        return "the RIE's Managed Instances mode prints no INIT REPORT: no truth to compare with"
    if settings.runtime != RUNTIME_BASH or settings.log_settings().writes_platform_lines:
        return "no environment records were read from a log group"
    return (
        "no Telemetry API in the bash engine, and the JSON log format at system log level WARN "
        "drops the platform's lines (INIT_START, INIT_REPORT, REPORT): init durations unknown"
    )


def _platform_verdict(simulation: Simulation, scan: RecordScan | None) -> PlatformVerdict | None:
    """The records' init durations and failed inits against the RIE's, where either source
    gives them: the Telemetry API (the Python engine), else the platform's lines in the log
    group, joined by stream (which give no held init's duration; none under JSON and WARN)."""
    settings = simulation.settings
    from_lines = settings.runtime == RUNTIME_BASH and not settings.managed_instances
    if not (settings.compares_init_durations or from_lines) or scan is None:
        return None
    if from_lines and not settings.log_settings().writes_platform_lines:
        return None
    joined = with_platform_lines(scan)[0]
    records = joined.records if joined is not None else ()
    environments = list(simulation.fleet.environments())
    if from_lines:
        # An environment initialized ahead of its first request (held at the gate) has no Init
        # Duration in its REPORT: neither side has its duration.
        waited = [e for e in environments if not getattr(e, "init_was_held", False)]
        truth = platform_truth(getattr(e, "output", "") for e in waited)
        return platform_verdict(truth, records, "the platform's lines")
    outputs = (getattr(e, "output", "") for e in environments)
    return platform_verdict(platform_truth(outputs), records)


def _peak_from_records(report: Report) -> int | None:
    """The report's peak of live environments when it is exact (from the records)."""
    return report.live_peak if report.figures_source == SOURCE_RECORDS else None


def _read_until_settled(
    read: Callable[[], tuple[Report, RecordScan | None, list[Check]]],
) -> tuple[Report, RecordScan | None, list[Check]]:
    """Read until every figure matches or the attempts run out (eventual consistency)."""
    found = read()
    for _ in range(_READ_ATTEMPTS - 1):
        if all(check.matches for check in found[2]):
            break
        time.sleep(1.0)
        found = read()
    return found
