"""Lambda's ``Invocations`` metric as the harness emulates it, and the cold-start checks."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from concurrency_observer import schema
from concurrency_observer.aws.lambda_invocations import lambda_invocations
from concurrency_observer.aws.report import ReportRequest, ReportWindow
from concurrency_observer.figures.platform import ColdStarts
from concurrency_observer.local.fleet import FleetSnapshot
from concurrency_observer.local.lambda_metrics import (
    MAX_DATUMS_PER_PUT,
    LambdaInvocationsMetric,
    batches,
    invocation_datums,
)
from concurrency_observer.local.simulation import (
    COLD_STARTS_FELT,
    LAMBDA_INVOCATIONS,
    Recording,
    cold_start_checks,
    unrecorded_cold_starts,
)
from tests.unit.aws.test_report_moto import aws_env, cloudwatch

__all__ = ["aws_env", "cloudwatch"]  # fixtures used by name

T0 = datetime(2026, 12, 2, 12, 0, 3, tzinfo=timezone.utc)
OD, PC = schema.INIT_ON_DEMAND, schema.INIT_PROVISIONED
PROMPT, DELAYED = schema.FIRST_INVOKE_PROMPT, schema.FIRST_INVOKE_DELAYED


def _window(start: datetime, seconds: int) -> ReportWindow:
    return ReportWindow(
        start=start,
        end=start + timedelta(seconds=seconds),
        period=5,
        lookback_start=start - timedelta(minutes=10),
    )


def test_one_datum_of_one_per_invocation_stamped_at_it() -> None:
    """Sorted by moment, value 1, unit Count, under FunctionName only."""
    moments = [T0.timestamp() + 2.5, T0.timestamp()]
    datums = invocation_datums("fn", moments)
    assert [d["Timestamp"] for d in datums] == [T0, T0 + timedelta(seconds=2.5)]
    assert {(d["MetricName"], d["Value"], d["Unit"]) for d in datums} == {
        ("Invocations", 1.0, "Count")
    }
    assert datums[0]["Dimensions"] == [{"Name": "FunctionName", "Value": "fn"}]


def test_batches_respect_put_metric_data_limit() -> None:
    """2,500 datums: two full batches and the rest."""
    sizes = [len(b) for b in batches([{"i": i} for i in range(2500)])]
    assert sizes == [MAX_DATUMS_PER_PUT, MAX_DATUMS_PER_PUT, 500]


def test_published_invocations_are_what_report_reads_back(cloudwatch: Any) -> None:
    """moto takes AWS/Lambda datums, and lambda_invocations sums them over the window."""
    metric = LambdaInvocationsMetric("fn")
    for i in range(1203):  # more than one PutMetricData call
        metric.served(T0.timestamp() + i * 0.05)
    metric.served((T0 + timedelta(hours=1)).timestamp())  # outside the window
    assert metric.publish(cloudwatch) == 1204
    assert metric.errors == []
    request = ReportRequest("fn", _window(T0 - timedelta(seconds=3), 90))
    assert lambda_invocations(cloudwatch, request) == 1203.0
    assert lambda_invocations(cloudwatch, ReportRequest("other", request.window)) is None


def test_a_failed_put_is_kept_not_raised() -> None:
    """CloudWatch refusing the datums leaves an error and the share unknown."""

    class Refusing:
        def put_metric_data(self, **_: Any) -> None:
            raise RuntimeError("throttled")

    metric = LambdaInvocationsMetric("fn")
    metric.served(T0.timestamp())
    assert metric.publish(Refusing()) == 0
    assert metric.errors == ["AWS/Lambda Invocations not put: RuntimeError: throttled"]


def _truth(served: int, first_invoke: dict[tuple[str, str], int]) -> FleetSnapshot:
    return FleetSnapshot(
        started={},
        stopped={},
        invocations={},
        live={},
        starting=0,
        busy=0,
        warmups=3,
        served=served,
        throttled=0,
        failed=0,
        idle_shutdowns=0,
        forced_shutdowns=0,
        peak_live=0,
        first_invoke=first_invoke,
    )


def test_cold_start_checks_compare_felt_and_invocations_with_the_control_plane() -> None:
    """Felt: on-demand and prompt only; invocations: served, warm-ups left out."""
    truth = _truth(40, {(OD, PROMPT): 4, (OD, DELAYED): 2, (PC, PROMPT): 3})
    cold = ColdStarts(felt=4, invocations=40.0, init_duration=None, not_waited_for={})
    checks = cold_start_checks(truth, cold, Recording())
    assert [(c.metric, c.truth, c.recorded, c.matches) for c in checks] == [
        (LAMBDA_INVOCATIONS, 40, 40.0, True),
        (COLD_STARTS_FELT, 4, 4.0, True),
    ]
    unknown = ColdStarts(felt=4, invocations=None, init_duration=None, not_waited_for={})
    assert [c.matches for c in cold_start_checks(truth, unknown)] == [False, True]


def test_without_first_invoke_classes_felt_is_listed_not_compared() -> None:
    """SHUTDOWN only: the invocations are still Lambda's own, felt is not recorded."""
    truth = _truth(7, {(OD, PROMPT): 2})
    recording = Recording(invocations=False, why="SHUTDOWN only")
    cold = ColdStarts(felt=0, invocations=7.0, init_duration=None, not_waited_for={})
    assert [c.metric for c in cold_start_checks(truth, cold, recording)] == [LAMBDA_INVOCATIONS]
    assert [(c.metric, c.truth) for c in unrecorded_cold_starts(truth, recording)] == [
        (COLD_STARTS_FELT, 2)
    ]
    assert unrecorded_cold_starts(truth) == []
