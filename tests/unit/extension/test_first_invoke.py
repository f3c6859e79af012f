"""The FirstInvoke classification at shutdown: never, prompt, delayed, or unknown (not emitted)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from concurrency_observer import schema
from concurrency_observer.extension.config import Config
from concurrency_observer.extension.lifecycle import Lifecycle
from concurrency_observer.extension.log import Logger
from concurrency_observer.extension.records import (
    Environment,
    Record,
    ShutdownFacts,
    build_shutdown_record,
    classify_first_invoke,
)
from concurrency_observer.extension.sinks import DeliveryResult

ENVIRONMENT = Environment("orders", "7", "on-demand")


def facts(invocations: int | None, time_to_first_invoke: float | None) -> ShutdownFacts:
    """Shutdown facts with the given invocation count and init-to-first-invoke gap."""
    return ShutdownFacts("spindown", 1700000100.0, 100.0, 5.0, invocations, time_to_first_invoke)


def shutdown_sets(record: Record) -> tuple[tuple[str, ...], ...]:
    """The dimension sets EnvironmentShutdown is emitted under."""
    (shutdown,) = [m for m in record.metrics if m.name == schema.ENVIRONMENT_SHUTDOWN]
    return shutdown.dimension_sets


@pytest.mark.parametrize(
    ("invocations", "gap", "expected"),
    [
        (0, None, schema.FIRST_INVOKE_NEVER),
        (3, 0.2, schema.FIRST_INVOKE_PROMPT),
        (1, 10.0, schema.FIRST_INVOKE_PROMPT),  # "within T": the threshold itself is prompt
        (1, 10.001, schema.FIRST_INVOKE_DELAYED),
        (7, 360.0, schema.FIRST_INVOKE_DELAYED),
        (None, None, None),  # SHUTDOWN-only: never-invoked cannot be told apart
        (None, 2.0, None),
        (2, None, None),  # inconsistent facts: claim nothing
    ],
)
def test_classification(invocations: int | None, gap: float | None, expected: str | None) -> None:
    """Each combination of invocation count and gap gets its class at the default 10 s threshold."""
    assert classify_first_invoke(facts(invocations, gap), schema.DEFAULT_PROMPT_THRESHOLD_S) == (
        expected
    )


def test_classified_shutdown_is_also_emitted_per_first_invoke_set() -> None:
    """A classified environment: EnvironmentShutdown gains FIRST_INVOKE_SET, and only it does."""
    record = build_shutdown_record(ENVIRONMENT, facts(0, None))
    assert dict(record.dimensions)[schema.FIRST_INVOKE] == schema.FIRST_INVOKE_NEVER
    assert shutdown_sets(record) == (
        *schema.BASE_DIMENSION_SETS,
        schema.SHUTDOWN_REASON_SET,
        schema.FIRST_INVOKE_SET,
    )
    for metric in record.metrics:
        if metric.name != schema.ENVIRONMENT_SHUTDOWN:
            assert schema.FIRST_INVOKE_SET not in metric.dimension_sets


def test_unknown_class_is_not_emitted() -> None:
    """SHUTDOWN-only: no FirstInvoke dimension value and no FIRST_INVOKE_SET datum."""
    record = build_shutdown_record(ENVIRONMENT, facts(None, None))
    assert schema.FIRST_INVOKE not in dict(record.dimensions)
    assert shutdown_sets(record) == (*schema.BASE_DIMENSION_SETS, schema.SHUTDOWN_REASON_SET)


def test_threshold_argument_moves_the_boundary() -> None:
    """A 3 s first invoke is delayed with a 2 s threshold and prompt with the default."""
    gap_3s = facts(1, 3.0)
    delayed = build_shutdown_record(ENVIRONMENT, gap_3s, 2.0)
    assert dict(delayed.dimensions)[schema.FIRST_INVOKE] == schema.FIRST_INVOKE_DELAYED
    prompt = build_shutdown_record(ENVIRONMENT, gap_3s)
    assert dict(prompt.dimensions)[schema.FIRST_INVOKE] == schema.FIRST_INVOKE_PROMPT


@given(
    invocations=st.none() | st.integers(min_value=0, max_value=10**6),
    gap=st.none() | st.floats(min_value=0, max_value=1e6, allow_nan=False),
    threshold=st.floats(min_value=0, max_value=3600, allow_nan=False),
)
def test_classification_property(
    invocations: int | None, gap: float | None, threshold: float
) -> None:
    """Property: a known class is one of the three, and the set appears exactly when it is known."""
    record = build_shutdown_record(ENVIRONMENT, facts(invocations, gap), threshold)
    first_invoke = dict(record.dimensions).get(schema.FIRST_INVOKE)
    assert first_invoke in (None, *schema.FIRST_INVOKE_CLASSES)
    assert (first_invoke is not None) == (schema.FIRST_INVOKE_SET in shutdown_sets(record))
    assert (first_invoke is None) <= (invocations is None or (invocations > 0 and gap is None))


class KeepingSink:
    """A sink that keeps every record it is given."""

    name = "keeping"
    may_block = False

    def __init__(self) -> None:
        self.records: list[Record] = []

    def deliver(self, records: Sequence[Record], deadline: float) -> DeliveryResult:
        self.records.extend(records)
        return DeliveryResult(tuple(records))


class Clock:
    """A settable monotonic clock."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("threshold_ms", "expected"),
    [("2000", schema.FIRST_INVOKE_DELAYED), (None, schema.FIRST_INVOKE_PROMPT)],
)
def test_lifecycle_uses_the_configured_threshold(threshold_ms: str | None, expected: str) -> None:
    """The PROMPT_THRESHOLD_MS setting reaches the shutdown record (first invoke at 3 s)."""
    environ = {"AWS_LAMBDA_FUNCTION_NAME": "orders", "CONCURRENCY_OBSERVER_METRICS": "full"}
    if threshold_ms is not None:
        environ["CONCURRENCY_OBSERVER_PROMPT_THRESHOLD_MS"] = threshold_ms
    config, warnings = Config.from_environ(environ)
    assert not any("PROMPT_THRESHOLD" in warning for warning in warnings)
    sink, clock = KeepingSink(), Clock(100.0)
    lifecycle = Lifecycle(
        config,
        sink,
        Logger("ERROR", lambda _line: None),
        started_wall=1700000000.0,
        started_mono=100.0,
        clock=clock,
        wall_clock=lambda: 1700000000.0 + clock.now - 100.0,
    )
    clock.now = 103.0
    lifecycle.on_invoke()
    clock.now = 150.0
    lifecycle.shutdown("spindown", 151.0)
    (shutdown,) = [record for record in sink.records if record.kind == "shutdown"]
    assert dict(shutdown.dimensions)[schema.FIRST_INVOKE] == expected
