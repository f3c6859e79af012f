"""What the observer costs a function at CloudWatch's list price: one place for every figure.

``report`` (the observer's own bill), ``layer publish --attach-all`` and the IaC examples all state
the cost of the metric profile actually configured; they take it from here, so the figures never
disagree. List prices are us-east-1's first tier, the ones AWS's pricing page shows first
(docs/aws.md, "What it costs"): a custom metric is billed per hour in which it receives data,
prorated over a month of 730 hours, so a metric that gets data every hour costs the full price.
"""

from __future__ import annotations

from dataclasses import dataclass

from concurrency_observer import schema

CUSTOM_METRIC_USD_PER_MONTH = 0.30  # first 10,000 metrics
LOG_INGESTION_USD_PER_GB = 0.50  # standard log class, what stdout lines cost once in a log group
LOGS_INSIGHTS_USD_PER_GB_SCANNED = 0.005
HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class FunctionShape:
    """What decides how many metric streams a function's observer makes.

    ``init_types``: init types seen (on-demand, provisioned-concurrency, ...); ``versions``:
    versions that ran; ``shutdown_reasons``: reasons seen; ``first_invoke_classes``: (InitType,
    FirstInvoke) pairs seen (at most 3 per init type, 0 when INVOKE is not counted).
    """

    init_types: int = 1
    versions: int = 1
    shutdown_reasons: int = 1
    first_invoke_classes: int = 3


def metric_streams(profile: str, shape: FunctionShape = FunctionShape()) -> int:
    """Distinct custom metrics (name and dimension values) one function's observer creates."""
    if profile == schema.METRICS_LEAN:
        return shape.init_types  # EnvironmentDelta per [FunctionName, InitType]
    if profile == schema.METRICS_FULL:
        per_metric = 1 + shape.versions + shape.init_types  # one stream per base dimension set
        return 6 * per_metric + shape.shutdown_reasons + shape.first_invoke_classes
    raise ValueError(
        f"unknown metric profile {profile!r}: expected one of {schema.METRICS_PROFILES}"
    )


def metrics_usd_per_month(streams: int, active_hour_share: float = 1.0) -> float:
    """List price of ``streams`` custom metrics getting data in ``active_hour_share`` of hours."""
    return streams * CUSTOM_METRIC_USD_PER_MONTH * max(0.0, min(active_hour_share, 1.0))


def records_usd(record_bytes: int) -> float:
    """What ingesting ``record_bytes`` of environment records into CloudWatch Logs costs."""
    return record_bytes / 1e9 * LOG_INGESTION_USD_PER_GB
