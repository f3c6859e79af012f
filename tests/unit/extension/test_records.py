"""The init and shutdown records: metrics, units, values, dimension sets and timestamps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from concurrency_observer import schema
from concurrency_observer.extension.records import (
    Environment,
    ShutdownFacts,
    build_init_record,
    build_shutdown_record,
)

ENVIRONMENT = Environment("orders", "7", "provisioned-concurrency")


def facts(**overrides: object) -> ShutdownFacts:
    """Shutdown facts with sensible values, some overridden."""
    values: dict[str, object] = {
        "reason": "spindown",
        "timestamp": 1700000100.25,
        "lifetime": 100.0,
        "idle_time": 40.0,
        "invocations": 3,
        "time_to_first_invoke": 1.5,
        **overrides,
    }
    return ShutdownFacts(**values)  # type: ignore[arg-type]


def test_init_record() -> None:
    """EnvironmentInit = 1 (Count) under the three base dimension sets, at the given time."""
    record = build_init_record(ENVIRONMENT, 1700000000.123)
    assert record.kind == "init"
    assert record.timestamp == 1700000000.123
    assert record.timestamp_ms == 1700000000123
    assert [(m.name, m.unit, m.value) for m in record.metrics] == [
        (schema.ENVIRONMENT_INIT, schema.UNIT_COUNT, 1)
    ]
    assert record.metrics[0].dimension_sets == schema.BASE_DIMENSION_SETS
    assert dict(record.dimensions) == {
        schema.FUNCTION_NAME: "orders",
        schema.FUNCTION_VERSION: "7",
        schema.INIT_TYPE: "provisioned-concurrency",
    }


def test_shutdown_record() -> None:
    """The five shutdown metrics with their units and values; Shutdown also per reason and class."""
    record = build_shutdown_record(ENVIRONMENT, facts())
    assert record.kind == "shutdown"
    assert record.timestamp == 1700000100.25
    by_name = {m.name: m for m in record.metrics}
    assert {name: (m.unit, m.value) for name, m in by_name.items()} == {
        schema.ENVIRONMENT_SHUTDOWN: (schema.UNIT_COUNT, 1),
        schema.ENVIRONMENT_LIFETIME: (schema.UNIT_SECONDS, 100.0),
        schema.ENVIRONMENT_IDLE_TIME: (schema.UNIT_SECONDS, 40.0),
        schema.ENVIRONMENT_INVOCATIONS: (schema.UNIT_COUNT, 3),
        schema.ENVIRONMENT_TIME_TO_FIRST_INVOKE: (schema.UNIT_SECONDS, 1.5),
    }
    for name, metric in by_name.items():
        expected = schema.BASE_DIMENSION_SETS
        if name == schema.ENVIRONMENT_SHUTDOWN:
            expected = (
                *schema.BASE_DIMENSION_SETS,
                schema.SHUTDOWN_REASON_SET,
                schema.FIRST_INVOKE_SET,
            )
        assert metric.dimension_sets == expected
    assert dict(record.dimensions)[schema.SHUTDOWN_REASON] == "spindown"
    assert dict(record.dimensions)[schema.FIRST_INVOKE] == schema.FIRST_INVOKE_PROMPT


def test_never_invoked_has_no_time_to_first_invoke() -> None:
    """An environment never invoked: Invocations 0 and no TimeToFirstInvoke datum."""
    record = build_shutdown_record(ENVIRONMENT, facts(invocations=0, time_to_first_invoke=None))
    names = {m.name: m.value for m in record.metrics}
    assert names[schema.ENVIRONMENT_INVOCATIONS] == 0
    assert schema.ENVIRONMENT_TIME_TO_FIRST_INVOKE not in names


def test_uncounted_invocations_are_not_emitted() -> None:
    """Registered for SHUTDOWN only: no Invocations datum rather than a false 0."""
    record = build_shutdown_record(ENVIRONMENT, facts(invocations=None, time_to_first_invoke=None))
    assert schema.ENVIRONMENT_INVOCATIONS not in {m.name for m in record.metrics}


def test_durations_rounded_and_never_negative() -> None:
    """Durations are rounded to the millisecond and a negative one becomes 0."""
    record = build_shutdown_record(ENVIRONMENT, facts(lifetime=1.23456, idle_time=-0.5))
    values = {m.name: m.value for m in record.metrics}
    assert values[schema.ENVIRONMENT_LIFETIME] == 1.235
    assert values[schema.ENVIRONMENT_IDLE_TIME] == 0.0


@given(
    lifetime=st.floats(min_value=-1e6, max_value=1e7, allow_nan=False),
    idle=st.floats(min_value=-1e6, max_value=1e7, allow_nan=False),
    invocations=st.none() | st.integers(min_value=0, max_value=10**9),
    reason=st.sampled_from(["spindown", "timeout", "failure", "sandboxterminated", "sigterm"]),
)
def test_shutdown_record_property(
    lifetime: float, idle: float, invocations: int | None, reason: str
) -> None:
    """Property: every metric is a known schema metric, with its unit, and a value >= 0."""
    record = build_shutdown_record(
        ENVIRONMENT,
        facts(lifetime=lifetime, idle_time=idle, invocations=invocations, reason=reason),
    )
    dimension_names = {name for name, _ in record.dimensions}
    for metric in record.metrics:
        assert metric.unit == schema.METRIC_UNITS[metric.name]
        assert metric.value >= 0
        for dimension_set in metric.dimension_sets:
            assert set(dimension_set) <= dimension_names
    assert sum(m.name == schema.ENVIRONMENT_SHUTDOWN for m in record.metrics) == 1
