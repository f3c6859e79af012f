"""The observer's cost per function per month, as one note that every place states the same way.

``layer publish --attach-all`` prints it and each IaC example's README and comments carry it; a
test checks each of them holds ``cost_figures()``. Every figure comes from ``pricing``: the lean
profile makes one custom metric per function and init type, the full profile 22 to 31 (one or two
init types), and both write one environment record per environment into the function's own log
group, billed as log ingestion.
"""

from __future__ import annotations

from typing import Final

from concurrency_observer import pricing, schema

# An environment record with every field (environment_record.py) is a compact JSON line of a few
# hundred bytes; this is the size the cost note prices, rounded up.
TYPICAL_RECORD_BYTES: Final = 500

# The shapes behind the full profile's range: one init type (on-demand), and provisioned
# concurrency beside on-demand (two init types, each with its three FirstInvoke classes).
FULL_SMALLEST: Final = pricing.FunctionShape(init_types=1, first_invoke_classes=3)
FULL_LARGEST: Final = pricing.FunctionShape(init_types=2, first_invoke_classes=6)


def _usd(amount: float) -> str:
    return f"${amount:.2f}"


def full_range() -> tuple[int, int]:
    """The full profile's custom metrics per function: fewest and most (22 and 31)."""
    return (
        pricing.metric_streams(schema.METRICS_FULL, FULL_SMALLEST),
        pricing.metric_streams(schema.METRICS_FULL, FULL_LARGEST),
    )


def records_per_million() -> str:
    """Log ingestion of a million environment records, e.g. ``$0.25``."""
    return _usd(pricing.records_usd(TYPICAL_RECORD_BYTES * 1_000_000))


def lean_note() -> str:
    """What the lean profile costs a function a month."""
    per_metric = _usd(pricing.metrics_usd_per_month(1))
    two = _usd(pricing.metrics_usd_per_month(2))
    return (
        f"lean metrics (the default): 1 custom metric per function and init type, {per_metric} "
        f"a month each at list price ({two} with provisioned concurrency beside on-demand), "
        f"plus log ingestion of the environment records: about {TYPICAL_RECORD_BYTES} bytes per "
        f"environment, {records_per_million()} per million environments"
    )


def full_note() -> str:
    """What the full profile costs a function a month."""
    low, high = full_range()
    return (
        f"full metrics: {low}–{high} custom metrics per function, "
        f"{_usd(pricing.metrics_usd_per_month(low))}–{_usd(pricing.metrics_usd_per_month(high))} "
        "a month at list price, plus the same log ingestion of the records"
    )


def cost_note(profile: str) -> str:
    """The note for the configured profile, with the other profile's figure for comparison."""
    if profile == schema.METRICS_LEAN:
        return f"{lean_note()}; {full_note()}"
    if profile == schema.METRICS_FULL:
        return f"{full_note()}; {lean_note()}"
    raise ValueError(
        f"unknown metric profile {profile!r}: expected one of {schema.METRICS_PROFILES}"
    )


def cost_figures() -> tuple[str, ...]:
    """The figures every example's cost note must state (tests look for each)."""
    low, high = full_range()
    return (
        "1 custom metric per function and init type",
        _usd(pricing.metrics_usd_per_month(1)),
        f"{low}–{high} custom metrics",
        f"{_usd(pricing.metrics_usd_per_month(low))}–{_usd(pricing.metrics_usd_per_month(high))}",
        f"{records_per_million()} per million environments",
    )
