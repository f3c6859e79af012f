"""The dashboard's Logs Insights widgets: what left the metrics under the lean default.

Under the lean profile the metrics carry inits, shutdowns and live environments only; shutdown
reasons, the FirstInvoke classes (never-invoked and proactive environments), lifetimes and the
per-environment figures are in the environment records, in the function's log group. These
widgets (``type: "log"``) query the records with CloudWatch Logs Insights, which discovers the
fields of a JSON log event by itself: a record line's keys are queryable as they are.

Each widget runs its query when the dashboard is opened or refreshed, over the dashboard's time
range: Logs Insights bills the bytes of the log group it scans in that range ($0.005 per GB in
us-east-1), the function's whole log volume, not just the records (docs/aws.md). The metric
widgets cost nothing per view.
"""

from __future__ import annotations

from typing import Any, Final

from concurrency_observer import environment_record as rec

# Only the record lines: the marker key holds the format's version.
RECORD_FILTER: Final = f'filter {rec.MARKER_KEY} = "{rec.VERSION}"'
# The validator's checks Logs Insights can express (environment_record.check_record): durations
# within [0, the maximum lifetime], the instants in order, the lifetime agreeing with them, idle
# time within the lifetime, and the optional counts within theirs. Types, text bounds and "not in
# the future" are beyond a query: report checks them (docs/report.md).
_TOLERANCE: Final = rec.LIFETIME_TOLERANCE_MS
PLAUSIBLE_FILTER: Final = (
    f"filter {rec.LIFETIME_MS} >= 0 and {rec.LIFETIME_MS} <= {rec.MAX_LIFETIME_MS}"
    f" and {rec.IDLE_MS} >= 0 and {rec.IDLE_MS} <= {rec.LIFETIME_MS} + {_TOLERANCE}"
    f" and {rec.SHUTDOWN_TIME} >= {rec.INIT_TIME}"
    f" and abs({rec.LIFETIME_MS} - ({rec.SHUTDOWN_TIME} - {rec.INIT_TIME})) <= {_TOLERANCE}"
    f" and (not ispresent({rec.INVOCATIONS})"
    f" or ({rec.INVOCATIONS} >= 0 and {rec.INVOCATIONS} <= {rec.MAX_COUNT}))"
    f" and (not ispresent({rec.TIME_TO_FIRST_INVOKE_MS}) or ({rec.TIME_TO_FIRST_INVOKE_MS} >= 0"
    f" and {rec.TIME_TO_FIRST_INVOKE_MS} <= {rec.LIFETIME_MS} + {_TOLERANCE}))"
)
SHUTDOWNS_BY_REASON: Final = f"stats count(*) as shutdowns by {rec.SHUTDOWN_REASON}"
WHY_THEY_EXIST: Final = f"stats count(*) as environments by {rec.INIT_TYPE}, {rec.FIRST_INVOKE}"
LIFETIMES: Final = (
    f"stats avg({rec.LIFETIME_MS}) as mean_ms, pct({rec.LIFETIME_MS}, 50) as p50_ms, "
    f"pct({rec.LIFETIME_MS}, 90) as p90_ms, max({rec.LIFETIME_MS}) as max_ms by bin(5m)"
)
PER_ENVIRONMENT: Final = (
    f"stats avg({rec.INVOCATIONS}) as invocations_mean, avg({rec.IDLE_MS}) as idle_ms_mean, "
    f"avg({rec.TIME_TO_FIRST_INVOKE_MS}) as first_invoke_ms_mean by bin(5m)"
)
_WIDTH: Final = 12
_HEIGHT: Final = 6


def _quoted(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def owner_filter(function_name: str, version: str | None = None) -> str:
    """Whose record it is: the record's own ``functionName`` (and ``functionVersion``)."""
    found = f"filter {rec.FUNCTION_NAME} = {_quoted(function_name)}"
    if version is not None:
        found += f" and {rec.FUNCTION_VERSION} = {_quoted(version)}"
    return found


def insights_query(
    log_group: str, statement: str, function_name: str, version: str | None = None
) -> str:
    """A dashboard log widget's query: the log group, the record filter, the function's own
    records (a shared group holds others'), the plausible ones, then ``statement``."""
    escaped = log_group.replace("'", "\\'")
    owner = owner_filter(function_name, version)
    return f"SOURCE '{escaped}' | {RECORD_FILTER} | {owner} | {PLAUSIBLE_FILTER} | {statement}"


def log_widget(
    x: int, y: int, title: str, query: str, *, region: str, view: str = "table"
) -> dict[str, Any]:
    """One ``type: "log"`` widget of the dashboard body."""
    return {
        "type": "log",
        "x": x,
        "y": y,
        "width": _WIDTH,
        "height": _HEIGHT,
        "properties": {"title": title, "query": query, "region": region, "view": view},
    }


def record_widgets(
    log_group: str, region: str, y: int, function_name: str, version: str | None = None
) -> list[dict[str, Any]]:
    """Four widgets, two rows from ``y``: reasons, why they exist, lifetimes, per environment;
    each over ``function_name``'s own records (of ``version`` only, when given)."""

    def query(statement: str) -> str:
        return insights_query(log_group, statement, function_name, version)

    return [
        log_widget(
            0,
            y,
            "Shutdowns by reason (environment records)",
            query(SHUTDOWNS_BY_REASON),
            region=region,
        ),
        log_widget(
            _WIDTH,
            y,
            "Why the environments exist: never, prompt, delayed (environment records)",
            query(WHY_THEY_EXIST),
            region=region,
        ),
        log_widget(
            0,
            y + _HEIGHT,
            "Environment lifetime, ms (environment records)",
            query(LIFETIMES),
            region=region,
            view="timeSeries",
        ),
        log_widget(
            _WIDTH,
            y + _HEIGHT,
            "Invocations, idle and time to first invoke per environment (records)",
            query(PER_ENVIRONMENT),
            region=region,
            view="timeSeries",
        ),
    ]
