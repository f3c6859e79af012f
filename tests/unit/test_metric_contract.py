"""The metric contract, pinned as literals: users' dashboards and alarms depend on these strings.

The full profile (``CONCURRENCY_OBSERVER_METRICS=full``, the six metrics) first, then the lean one
(the default: ``EnvironmentDelta`` alone).

Every other test compares against ``schema.*``, so a rename there would pass them all while
breaking every alarm. This file spells each name out instead: renaming a metric, a unit, a
dimension or a dimension set, or changing the EMF or PutMetricData shape, must fail here.
(docs/design.md, "The metric contract".)

To add a dimension set, add one row to ``BASE_SETS`` (every metric) or to ``EXTRA_SETS`` (one
metric); the expected documents below are built from those rows.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from concurrency_observer import schema
from concurrency_observer.extension.records import (
    Environment,
    Record,
    ShutdownFacts,
    build_delta_record,
    build_init_record,
    build_shutdown_record,
)
from concurrency_observer.extension.sinks.cloudwatch import put_metric_data_params
from concurrency_observer.extension.sinks.emf import emf_document

NAMESPACE = "ConcurrencyObserver"

METRIC_UNITS = {
    "EnvironmentInit": "Count",
    "EnvironmentShutdown": "Count",
    "EnvironmentLifetime": "Seconds",
    "EnvironmentInvocations": "Count",
    "EnvironmentIdleTime": "Seconds",
    "EnvironmentTimeToFirstInvoke": "Seconds",
    "EnvironmentDelta": "Count",
}

# Every datum is emitted once under each of these dimension sets ...
BASE_SETS = [
    ["FunctionName"],
    ["FunctionName", "FunctionVersion"],
    ["FunctionName", "InitType"],
]
# ... and these metrics also under these.
EXTRA_SETS = {
    "EnvironmentShutdown": [
        ["FunctionName", "ShutdownReason"],
        ["FunctionName", "InitType", "FirstInvoke"],
    ],
}


def sets_of(metric: str) -> list[list[str]]:
    """The dimension sets ``metric`` is emitted under, from the rows above."""
    return BASE_SETS + EXTRA_SETS.get(metric, [])


INIT_TYPES = ("on-demand", "provisioned-concurrency", "snap-start", "lambda-managed-instances")
SHUTDOWN_REASONS = ("spindown", "timeout", "failure")  # Lambda's; others are kept as tokens
FIRST_INVOKE_CLASSES = ("never", "prompt", "delayed")

ENVIRONMENT = Environment("orders", "7", "provisioned-concurrency")
INIT_AT = 1_800_000_000.25  # 2027-01-15T08:00:00.250Z
SHUTDOWN_AT = 1_800_000_360.5
INIT_RECORD = build_init_record(ENVIRONMENT, INIT_AT)
SHUTDOWN_RECORD = build_shutdown_record(
    ENVIRONMENT, ShutdownFacts("spindown", SHUTDOWN_AT, 360.25, 12.5, 4, 0.75)
)

# The values a record carries, as CloudWatch sees them.
INIT_DIMENSIONS = {
    "FunctionName": "orders",
    "FunctionVersion": "7",
    "InitType": "provisioned-concurrency",
}
# First invoke 0.75 s after init, within the default 10 s: "prompt".
SHUTDOWN_DIMENSIONS = {**INIT_DIMENSIONS, "ShutdownReason": "spindown", "FirstInvoke": "prompt"}
SHUTDOWN_VALUES = {
    "EnvironmentShutdown": 1,
    "EnvironmentLifetime": 360.25,
    "EnvironmentIdleTime": 12.5,
    "EnvironmentInvocations": 4,
    "EnvironmentTimeToFirstInvoke": 0.75,
}


def test_metric_names_and_units() -> None:
    """The six metric names and their units are exactly the published ones."""
    assert schema.METRIC_UNITS == METRIC_UNITS
    assert schema.DEFAULT_NAMESPACE == NAMESPACE


def test_dimension_names_and_sets() -> None:
    """The dimension names, the sets every datum gets and the ShutdownReason set."""
    assert (schema.FUNCTION_NAME, schema.FUNCTION_VERSION) == ("FunctionName", "FunctionVersion")
    assert (schema.INIT_TYPE, schema.SHUTDOWN_REASON) == ("InitType", "ShutdownReason")
    assert [list(s) for s in schema.BASE_DIMENSION_SETS] == BASE_SETS
    assert schema.FIRST_INVOKE == "FirstInvoke"
    assert [list(schema.SHUTDOWN_REASON_SET), list(schema.FIRST_INVOKE_SET)] == EXTRA_SETS[
        "EnvironmentShutdown"
    ]


def test_dimension_values() -> None:
    """InitType values and the ShutdownReason spelling users filter on."""
    assert schema.KNOWN_INIT_TYPES == INIT_TYPES
    assert schema.KNOWN_SHUTDOWN_REASONS == SHUTDOWN_REASONS
    assert schema.FIRST_INVOKE_CLASSES == FIRST_INVOKE_CLASSES
    assert schema.DEFAULT_PROMPT_THRESHOLD_S == 10.0
    assert schema.normalize_init_type(None) == "on-demand"
    assert schema.normalize_shutdown_reason("Spindown") == "spindown"
    assert schema.normalize_shutdown_reason("SandboxTerminated") == "sandboxterminated"


def test_records_emit_each_metric_under_its_sets() -> None:
    """Each metric of the init and shutdown records goes out under exactly its dimension sets."""
    for record in (INIT_RECORD, SHUTDOWN_RECORD):
        for metric in record.metrics:
            expected = sets_of(metric.name)
            assert [list(s) for s in metric.dimension_sets] == expected, metric.name
            assert metric.unit == METRIC_UNITS[metric.name]
    assert [m.name for m in INIT_RECORD.metrics] == ["EnvironmentInit"]
    assert {m.name for m in SHUTDOWN_RECORD.metrics} == set(SHUTDOWN_VALUES)


def test_emf_document_of_an_init_record() -> None:
    """The whole EMF document of an init record, as a dict."""
    assert emf_document(INIT_RECORD, NAMESPACE) == {
        "_aws": {
            "Timestamp": 1_800_000_000_250,
            "CloudWatchMetrics": [
                {
                    "Namespace": "ConcurrencyObserver",
                    "Dimensions": sets_of("EnvironmentInit"),
                    "Metrics": [{"Name": "EnvironmentInit", "Unit": "Count"}],
                }
            ],
        },
        "FunctionName": "orders",
        "FunctionVersion": "7",
        "InitType": "provisioned-concurrency",
        "EnvironmentInit": 1,
    }


def test_emf_document_of_a_shutdown_record() -> None:
    """The whole EMF document of a shutdown record: one directive per distinct list of sets."""
    assert emf_document(SHUTDOWN_RECORD, NAMESPACE) == {
        "_aws": {
            "Timestamp": 1_800_000_360_500,
            "CloudWatchMetrics": [
                {
                    "Namespace": "ConcurrencyObserver",
                    "Dimensions": sets_of("EnvironmentShutdown"),
                    "Metrics": [{"Name": "EnvironmentShutdown", "Unit": "Count"}],
                },
                {
                    "Namespace": "ConcurrencyObserver",
                    "Dimensions": BASE_SETS,
                    "Metrics": [
                        {"Name": "EnvironmentLifetime", "Unit": "Seconds"},
                        {"Name": "EnvironmentIdleTime", "Unit": "Seconds"},
                        {"Name": "EnvironmentInvocations", "Unit": "Count"},
                        {"Name": "EnvironmentTimeToFirstInvoke", "Unit": "Seconds"},
                    ],
                },
            ],
        },
        "FunctionName": "orders",
        "FunctionVersion": "7",
        "InitType": "provisioned-concurrency",
        "ShutdownReason": "spindown",
        "FirstInvoke": "prompt",
        **SHUTDOWN_VALUES,
    }


def test_put_metric_data_parameters_of_an_init_record() -> None:
    """The PutMetricData request of an init record, parameter by parameter."""
    expected = [("Action", "PutMetricData"), ("Version", "2010-08-01")]
    expected.append(("Namespace", "ConcurrencyObserver"))
    for n, dimension_set in enumerate(sets_of("EnvironmentInit"), start=1):
        expected.append((f"MetricData.member.{n}.MetricName", "EnvironmentInit"))
        for m, name in enumerate(dimension_set, start=1):
            expected.append((f"MetricData.member.{n}.Dimensions.member.{m}.Name", name))
            expected.append(
                (f"MetricData.member.{n}.Dimensions.member.{m}.Value", INIT_DIMENSIONS[name])
            )
        expected.append((f"MetricData.member.{n}.Timestamp", "2027-01-15T08:00:00.250Z"))
        expected.append((f"MetricData.member.{n}.Value", "1"))
        expected.append((f"MetricData.member.{n}.Unit", "Count"))
    assert put_metric_data_params(NAMESPACE, [INIT_RECORD]) == expected


_DATUM_PARAM = re.compile(
    r"MetricData\.member\.(\d+)\."
    r"(MetricName|Timestamp|Value|Unit|Dimensions\.member\.(\d+)\.(Name|Value))"
)


def test_put_metric_data_parameters_of_a_shutdown_record() -> None:
    """Only the documented parameter names, and one datum per metric and dimension set."""
    params = put_metric_data_params(NAMESPACE, [SHUTDOWN_RECORD])
    assert params[:3] == [
        ("Action", "PutMetricData"),
        ("Version", "2010-08-01"),
        ("Namespace", "ConcurrencyObserver"),
    ]
    data: dict[str, dict[str, str]] = {}
    for key, param_value in params[3:]:
        match = _DATUM_PARAM.fullmatch(key)
        assert match is not None, key
        data.setdefault(match[1], {})[match[2]] = param_value
    sent = []
    for datum in data.values():
        names = [v for k, v in sorted(datum.items()) if k.endswith(".Name")]
        for k, v in datum.items():
            if k.endswith(".Name"):
                assert datum[k.removesuffix("Name") + "Value"] == SHUTDOWN_DIMENSIONS[v]
        assert datum["Timestamp"] == "2027-01-15T08:06:00.500Z"
        assert float(datum["Value"]) == SHUTDOWN_VALUES[datum["MetricName"]]
        assert datum["Unit"] == METRIC_UNITS[datum["MetricName"]]
        sent.append((datum["MetricName"], names))
    expected = [
        (name, dimension_set) for name in SHUTDOWN_VALUES for dimension_set in sets_of(name)
    ]
    assert sorted(sent) == sorted(expected)


# -- the lean profile (the default): one metric, +1 at init and -1 at shutdown ------------------

LEAN_INIT = build_delta_record("init", ENVIRONMENT, INIT_AT)
LEAN_SHUTDOWN = build_delta_record("shutdown", ENVIRONMENT, SHUTDOWN_AT)


def test_lean_names() -> None:
    """The lean metric, its unit, its one dimension set and the profile names."""
    assert (schema.ENVIRONMENT_DELTA, schema.METRIC_UNITS["EnvironmentDelta"]) == (
        "EnvironmentDelta",
        "Count",
    )
    assert list(schema.LEAN_DIMENSION_SET) == ["FunctionName", "InitType"]
    assert (schema.METRICS_LEAN, schema.METRICS_FULL) == ("lean", "full")
    assert schema.DEFAULT_METRICS_PROFILE == "lean"


@pytest.mark.parametrize(
    ("record", "stamp", "delta"),
    [(LEAN_INIT, 1_800_000_000_250, 1), (LEAN_SHUTDOWN, 1_800_000_360_500, -1)],
    ids=["init", "shutdown"],
)
def test_lean_emf_documents(record: Record, stamp: int, delta: int) -> None:
    """The whole EMF document of the lean init (+1) and shutdown (-1) records."""
    assert emf_document(record, NAMESPACE) == {
        "_aws": {
            "Timestamp": stamp,
            "CloudWatchMetrics": [
                {
                    "Namespace": "ConcurrencyObserver",
                    "Dimensions": [["FunctionName", "InitType"]],
                    "Metrics": [{"Name": "EnvironmentDelta", "Unit": "Count"}],
                }
            ],
        },
        "FunctionName": "orders",
        "InitType": "provisioned-concurrency",
        "EnvironmentDelta": delta,
    }


def test_lean_put_metric_data_parameters() -> None:
    """The PutMetricData request of a lean init and shutdown sent together: two data in all."""
    assert put_metric_data_params(NAMESPACE, [LEAN_INIT, LEAN_SHUTDOWN]) == [
        ("Action", "PutMetricData"),
        ("Version", "2010-08-01"),
        ("Namespace", "ConcurrencyObserver"),
        ("MetricData.member.1.MetricName", "EnvironmentDelta"),
        ("MetricData.member.1.Dimensions.member.1.Name", "FunctionName"),
        ("MetricData.member.1.Dimensions.member.1.Value", "orders"),
        ("MetricData.member.1.Dimensions.member.2.Name", "InitType"),
        ("MetricData.member.1.Dimensions.member.2.Value", "provisioned-concurrency"),
        ("MetricData.member.1.Timestamp", "2027-01-15T08:00:00.250Z"),
        ("MetricData.member.1.Value", "1"),
        ("MetricData.member.1.Unit", "Count"),
        ("MetricData.member.2.MetricName", "EnvironmentDelta"),
        ("MetricData.member.2.Dimensions.member.1.Name", "FunctionName"),
        ("MetricData.member.2.Dimensions.member.1.Value", "orders"),
        ("MetricData.member.2.Dimensions.member.2.Name", "InitType"),
        ("MetricData.member.2.Dimensions.member.2.Value", "provisioned-concurrency"),
        ("MetricData.member.2.Timestamp", "2027-01-15T08:06:00.500Z"),
        ("MetricData.member.2.Value", "-1"),
        ("MetricData.member.2.Unit", "Count"),
    ]


@given(st.text(max_size=80))
def test_safe_token_is_the_regular_expression_it_replaced(raw: str) -> None:
    """safe_token, written without re (the extension calls it before its first /event/next),
    gives what re.sub of unsafe runs gave, for any text."""
    expected = re.sub(r"[^a-z0-9_.-]+", "-", raw.strip().lower()).strip("-")[:32] or "unknown"
    assert schema.safe_token(raw) == expected
