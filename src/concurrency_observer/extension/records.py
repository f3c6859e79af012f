"""The init and shutdown records, built as data; the sinks only write them.

A ``Record`` is what one moment of the environment's life produces: its timestamp (the moment it
describes, so a late delivery still lands in the right minute), the dimension values and the
metrics, each with the dimension sets it is emitted under (names and sets from ``schema``).

Two profiles (``CONCURRENCY_OBSERVER_METRICS``): ``lean``, the default, gives each moment one datum,
``EnvironmentDelta`` (+1 at init, -1 at shutdown) under ``[FunctionName, InitType]`` only;
``full`` gives the six metrics under every dimension set. What the lean metric leaves out goes
into the environment record (``environment_line``), written at shutdown under either profile.
"""

from __future__ import annotations

from concurrency_observer import schema
from concurrency_observer.extension.frozen import value

INIT = "init"
SHUTDOWN = "shutdown"


@value
class Metric:
    """One metric value, emitted once per dimension set."""

    name: str
    unit: str
    value: float
    dimension_sets: tuple[tuple[str, ...], ...]


@value
class Record:
    """The metrics of one moment (``kind`` ``init`` or ``shutdown``) at ``timestamp`` (epoch s)."""

    kind: str
    timestamp: float
    dimensions: tuple[tuple[str, str], ...]
    metrics: tuple[Metric, ...]

    @property
    def timestamp_ms(self) -> int:
        """The timestamp in whole epoch milliseconds."""
        return round(self.timestamp * 1000)


@value
class Environment:
    """What identifies an execution environment's records: the base dimension values."""

    function_name: str
    function_version: str
    init_type: str


@value
class ShutdownFacts:
    """What the extension measured by SHUTDOWN (durations in seconds).

    ``invocations`` and ``time_to_first_invoke`` are ``None`` when unknown: not subscribed to
    INVOKE, or (the latter) never invoked.
    """

    reason: str
    timestamp: float
    lifetime: float
    idle_time: float
    invocations: int | None
    time_to_first_invoke: float | None


def _metric(name: str, metric_value: float, *extra_sets: tuple[str, ...]) -> Metric:
    return Metric(
        name, schema.METRIC_UNITS[name], metric_value, schema.BASE_DIMENSION_SETS + extra_sets
    )


def _seconds(duration: float) -> float:
    # Millisecond resolution is plenty, and a clock oddity must not produce a negative duration.
    return round(max(duration, 0.0), 3)


def _base_dimensions(environment: Environment) -> tuple[tuple[str, str], ...]:
    return (
        (schema.FUNCTION_NAME, environment.function_name),
        (schema.FUNCTION_VERSION, environment.function_version),
        (schema.INIT_TYPE, environment.init_type),
    )


def build_init_record(environment: Environment, timestamp: float) -> Record:
    """``EnvironmentInit`` = 1 at ``timestamp`` (epoch s), the moment the environment started."""
    metrics = (_metric(schema.ENVIRONMENT_INIT, 1),)
    return Record(INIT, timestamp, _base_dimensions(environment), metrics)


def build_delta_record(kind: str, environment: Environment, timestamp: float) -> Record:
    """The lean profile's record of ``kind`` (``init``: +1, ``shutdown``: -1) at ``timestamp``.

    Only the lean set's dimension values travel: an EMF line stays short, and no property of it
    can be mistaken for a dimension.
    """
    delta = 1 if kind == INIT else -1
    metric = Metric(
        schema.ENVIRONMENT_DELTA,
        schema.METRIC_UNITS[schema.ENVIRONMENT_DELTA],
        delta,
        (schema.LEAN_DIMENSION_SET,),
    )
    dimensions = (
        (schema.FUNCTION_NAME, environment.function_name),
        (schema.INIT_TYPE, environment.init_type),
    )
    return Record(kind, timestamp, dimensions, (metric,))


def classify_first_invoke(facts: ShutdownFacts, prompt_threshold: float) -> str | None:
    """The environment's ``FirstInvoke`` class; ``None`` when INVOKE events were not counted.

    ``never``: no INVOKE; ``prompt``: the first came within ``prompt_threshold`` seconds of init;
    ``delayed``: later (for an on-demand environment, a proactive init: Lambda started it ahead
    of demand).
    """
    if facts.invocations is None:
        return None  # SHUTDOWN-only: the extension cannot tell a never-invoked environment apart
    if facts.invocations == 0:
        return schema.FIRST_INVOKE_NEVER
    if facts.time_to_first_invoke is None:
        return None  # invoked but no first-invoke time: inconsistent facts, claim nothing
    if facts.time_to_first_invoke <= prompt_threshold:
        return schema.FIRST_INVOKE_PROMPT
    return schema.FIRST_INVOKE_DELAYED


def build_shutdown_record(
    environment: Environment,
    facts: ShutdownFacts,
    prompt_threshold: float = schema.DEFAULT_PROMPT_THRESHOLD_S,
) -> Record:
    """The shutdown metrics; ``EnvironmentShutdown`` is also emitted per ``ShutdownReason`` and,
    when the environment's ``FirstInvoke`` class is known, per ``FIRST_INVOKE_SET``.

    ``prompt_threshold`` (seconds) separates ``prompt`` from ``delayed`` first invokes.
    """
    first_invoke = classify_first_invoke(facts, prompt_threshold)
    shutdown_sets = [schema.SHUTDOWN_REASON_SET]
    if first_invoke is not None:
        shutdown_sets.append(schema.FIRST_INVOKE_SET)
    metrics = [
        _metric(schema.ENVIRONMENT_SHUTDOWN, 1, *shutdown_sets),
        _metric(schema.ENVIRONMENT_LIFETIME, _seconds(facts.lifetime)),
        _metric(schema.ENVIRONMENT_IDLE_TIME, _seconds(facts.idle_time)),
    ]
    if facts.invocations is not None:
        metrics.append(_metric(schema.ENVIRONMENT_INVOCATIONS, facts.invocations))
    if facts.time_to_first_invoke is not None:
        metrics.append(
            _metric(schema.ENVIRONMENT_TIME_TO_FIRST_INVOKE, _seconds(facts.time_to_first_invoke))
        )
    dimensions = (*_base_dimensions(environment), (schema.SHUTDOWN_REASON, facts.reason))
    if first_invoke is not None:
        dimensions = (*dimensions, (schema.FIRST_INVOKE, first_invoke))
    return Record(SHUTDOWN, facts.timestamp, dimensions, tuple(metrics))
