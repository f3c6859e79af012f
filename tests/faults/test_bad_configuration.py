"""Bad configuration: any value of any setting gives a clear line and the default, never a crash.

``tests/unit/extension/test_config.py`` checks one invalid value per setting. Here: a property over
arbitrary values of every setting at once (Unicode digits, huge numbers, control characters), and
one real environment (the RIE) with every setting invalid at the same time, whose function still
works and whose records still reach CloudWatch (moto).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from concurrency_observer import schema
from concurrency_observer.extension.config import (
    DURATIONS_MS,
    EVENT_CHOICES,
    LOG_LEVELS,
    PREFIX,
    SINKS,
    Config,
)
from concurrency_observer.extension.log import MAX_MESSAGE
from concurrency_observer.local import readback
from concurrency_observer.local.cloudwatch import LocalCloudWatch
from tests.faults.helpers import run_environment
from tests.lean_metrics import environment_records, lean_counts

SETTINGS = [
    f"{PREFIX}{suffix}"
    for suffix in ("SINK", "METRICS", "NAMESPACE", "LOG_LEVEL", "EVENTS", *DURATIONS_MS)
]
OTHER_VARIABLES = [
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL_CLOUDWATCH",
    "AWS_ENDPOINT_URL",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
]
DEFAULTS = Config()

values = st.one_of(
    st.text(max_size=30),
    st.text(alphabet="0123456789²³¹٣४", max_size=8),  # digits int() takes, and ones it refuses
    st.integers(min_value=-(10**6), max_value=10**7).map(str),
    st.just("9" * 5000),  # more digits than int() converts
    st.sampled_from(["cloudwatch", "EMF", "debug", "shutdown", "INVOKE,SHUTDOWN", "http://x:1"]),
)


def field(variable: str) -> str:
    """The Config attribute a CONCURRENCY_OBSERVER_* variable sets."""
    return variable.removeprefix(PREFIX).lower()


@given(st.dictionaries(st.sampled_from(SETTINGS + OTHER_VARIABLES), values))
def test_any_values_give_a_valid_config_and_one_line_per_problem(environ: dict[str, str]) -> None:
    """Property: no exception; every value in its domain; a bad one is named once, and defaulted."""
    config, warnings = Config.from_environ(environ)
    assert config.sink in SINKS
    assert config.metrics in schema.METRICS_PROFILES
    assert config.log_level in LOG_LEVELS
    assert config.events in EVENT_CHOICES.values()
    for suffix, (_default, low, high) in DURATIONS_MS.items():
        assert low <= getattr(config, suffix.lower()) <= high
    assert 1 <= len(config.namespace) <= 255
    assert not config.namespace.startswith("AWS/")
    assert config.init_type == schema.safe_token(config.init_type)
    for warning in warnings:
        assert "\n" not in warning
    for variable in SETTINGS:
        naming = [w for w in warnings if w.startswith(f"{variable}=")]
        assert len(naming) <= 1
        if naming:
            assert getattr(config, field(variable)) == getattr(DEFAULTS, field(variable))


ALL_INVALID = {
    f"{PREFIX}SINK": "kinesis",
    f"{PREFIX}METRICS": "everything",
    f"{PREFIX}NAMESPACE": "AWS/Lambda",
    f"{PREFIX}LOG_LEVEL": "LOUD",
    f"{PREFIX}EVENTS": "INVOKE,RESTORE",
    f"{PREFIX}INIT_BUDGET_MS": "²",
    f"{PREFIX}SHUTDOWN_MARGIN_MS": "-5",
    f"{PREFIX}SIGTERM_BUDGET_MS": "forever",
    f"{PREFIX}CONNECT_TIMEOUT_MS": "9" * 5000,
    "AWS_REGION": "Europe",
    "AWS_ENDPOINT_URL_CLOUDWATCH": "moto:5000",
}


@pytest.mark.e2e
def test_every_setting_invalid_under_the_rie(
    rie_path: Path, layer_dir: Path, cloudwatch: LocalCloudWatch
) -> None:
    """All settings invalid at once: one bounded line each, defaults used, records in CloudWatch."""
    environ = {
        **ALL_INVALID,
        # The fallbacks botocore would use too: the records still find moto.
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": cloudwatch.endpoint_url,
    }
    run = run_environment(rie_path, layer_dir, cloudwatch_url=None, extra_env=environ)
    assert run.invocations_succeeded()
    assert run.shutdown.forced is False
    warnings = [line for line in run.lines if " WARNING " in line]
    assert len(warnings) == len(ALL_INVALID), warnings
    for variable in ALL_INVALID:
        assert sum(f"WARNING {variable}" in line for line in warnings) == 1, variable
    assert all(
        len(line) <= len("[concurrency-observer] WARNING ") + MAX_MESSAGE for line in warnings
    )
    assert len(run.lines) == len(ALL_INVALID) + 2  # plus one line at init, one at shutdown
    # The default namespace, since the configured one is invalid.
    since = datetime.fromtimestamp(run.started, tz=timezone.utc)
    summaries = readback.read_cloudwatch(cloudwatch.client(), schema.DEFAULT_NAMESPACE, since)
    # The default profile, since the configured one is invalid: inits and shutdowns from the
    # one EnvironmentDelta stream, the rest from the environment record.
    assert lean_counts(summaries, run.function_name) == {schema.INIT_ON_DEMAND: (1, 1)}
    (record,) = environment_records(run.output, run.function_name)
    assert (record["metrics"], record["invocations"]) == ("lean", len(run.invocations))
