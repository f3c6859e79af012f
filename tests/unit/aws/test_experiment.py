"""The AWS side of the study against botocore's Stubber: READY polling, settling, restoring."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from concurrency_observer.aws.experiment import (
    CloudWatchInitCounter,
    CloudWatchUsageCounter,
    LambdaProvisioning,
    describe_function,
    estimate_cost,
    other_provisioned_qualifiers,
)
from concurrency_observer.errors import AwsError
from concurrency_observer.study.clock import ManualClock
from concurrency_observer.study.errors import StudyError
from concurrency_observer.study.loop import Study
from concurrency_observer.study.plan import StudyPlan
from concurrency_observer.study.ports import Usage, WaitProgress
from concurrency_observer.study.state import StateStore
from concurrency_observer.study.waits import wait_for_settled_count

FUNCTION = "orders"
ALIAS = "live"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}"
START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def make_client(service: str) -> Any:
    """A real client with fake credentials; the Stubber answers instead of AWS."""
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return session.client(service)


@pytest.fixture
def lambda_stub() -> Iterator[tuple[Any, Stubber]]:
    """A Lambda client and its Stubber; every queued response must be used."""
    client = make_client("lambda")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def cloudwatch_stub() -> Iterator[tuple[Any, Stubber]]:
    """A CloudWatch client and its Stubber; every queued response must be used."""
    client = make_client("cloudwatch")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def config_response(status: str, requested: int, allocated: int, reason: str = "") -> Any:
    """A GetProvisionedConcurrencyConfig answer."""
    response: dict[str, Any] = {
        "RequestedProvisionedConcurrentExecutions": requested,
        "AllocatedProvisionedConcurrentExecutions": allocated,
        "AvailableProvisionedConcurrentExecutions": allocated,
        "Status": status,
        "LastModified": "2026-03-01T12:00:00+0000",
    }
    if reason:
        response["StatusReason"] = reason
    return response


QUALIFIED = {"FunctionName": FUNCTION, "Qualifier": ALIAS}


def queue_get(
    stubber: Stubber, status: str, requested: int, allocated: int, reason: str = ""
) -> None:
    """Queue one GetProvisionedConcurrencyConfig answer."""
    stubber.add_response(
        "get_provisioned_concurrency_config",
        config_response(status, requested, allocated, reason),
        QUALIFIED,
    )


def queue_put(stubber: Stubber, level: int) -> None:
    """Queue one PutProvisionedConcurrencyConfig answer, expecting ``level``."""
    stubber.add_response(
        "put_provisioned_concurrency_config",
        {"RequestedProvisionedConcurrentExecutions": level, "Status": "IN_PROGRESS"},
        {**QUALIFIED, "ProvisionedConcurrentExecutions": level},
    )


def metric_response(*values: float, first_minute: int = 0) -> Any:
    """A GetMetricData answer with one data point per value, a minute apart."""
    return {
        "MetricDataResults": [
            {
                "Id": "inits",
                "Label": "EnvironmentInit",
                "Timestamps": [
                    START + timedelta(minutes=first_minute + i) for i in range(len(values))
                ],
                "Values": list(values),
                "StatusCode": "Complete",
            }
        ]
    }


def lean_queries() -> list[dict[str, Any]]:
    """The lean profile's EnvironmentDelta queries (Sum, SampleCount) both counters add."""
    return [
        {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": "StudyNS",
                    "MetricName": "EnvironmentDelta",
                    "Dimensions": [
                        {"Name": "FunctionName", "Value": FUNCTION},
                        {"Name": "InitType", "Value": "provisioned-concurrency"},
                    ],
                },
                "Period": 60,
                "Stat": stat,
            },
            "ReturnData": True,
        }
        for query_id, stat in (("net", "Sum"), ("samples", "SampleCount"))
    ]


def expected_metric_query(start: datetime, end: datetime) -> dict[str, Any]:
    """The GetMetricData request the counter must send, written out by hand."""
    return {
        "MetricDataQueries": [
            {
                "Id": "inits",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "StudyNS",
                        "MetricName": "EnvironmentInit",
                        "Dimensions": [
                            {"Name": "FunctionName", "Value": FUNCTION},
                            {"Name": "InitType", "Value": "provisioned-concurrency"},
                        ],
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            },
            *lean_queries(),
        ],
        "StartTime": start,
        "EndTime": end,
        "ScanBy": "TimestampAscending",
    }


def progress_sink() -> tuple[list[WaitProgress], Any]:
    """A list and the callback that fills it."""
    seen: list[WaitProgress] = []
    return seen, seen.append


def test_wait_ready_polls_in_progress_until_ready(lambda_stub: tuple[Any, Stubber]) -> None:
    """IN_PROGRESS twice then READY: three reads, two sleeps, the allocation reported."""
    client, stubber = lambda_stub
    queue_get(stubber, "IN_PROGRESS", 20, 0)
    queue_get(stubber, "IN_PROGRESS", 20, 12)
    queue_get(stubber, "READY", 20, 20)
    clock = ManualClock(START)
    target = LambdaProvisioning(client, FUNCTION, ALIAS, poll_interval=10, clock=clock)
    seen, callback = progress_sink()
    result = target.wait_ready(20, timeout=300, on_progress=callback)
    assert (result.allocated, result.seconds) == (20, 20.0)
    assert clock.sleeps == [10.0, 10.0]
    assert [(u.completed, u.total) for u in seen] == [(0, 20), (12, 20), (20, 20)]


def test_wait_ready_failed_is_a_clear_error(lambda_stub: tuple[Any, Stubber]) -> None:
    """FAILED stops the wait with Lambda's StatusReason in the message."""
    client, stubber = lambda_stub
    queue_get(stubber, "IN_PROGRESS", 20, 0)
    queue_get(stubber, "FAILED", 20, 0, "Function failed to initialize")
    target = LambdaProvisioning(client, FUNCTION, ALIAS, poll_interval=10, clock=ManualClock())
    with pytest.raises(StudyError, match="20 FAILED: Function failed to initialize"):
        target.wait_ready(20, timeout=300, on_progress=progress_sink()[1])


def test_wait_ready_times_out(lambda_stub: tuple[Any, Stubber]) -> None:
    """Still IN_PROGRESS at the timeout: an error naming the timeout and the allocation."""
    client, stubber = lambda_stub
    for allocated in (0, 5, 9, 11):  # at 0, 10, 20 and 30 s
        queue_get(stubber, "IN_PROGRESS", 20, allocated)
    clock = ManualClock()
    target = LambdaProvisioning(client, FUNCTION, ALIAS, poll_interval=10, clock=clock)
    with pytest.raises(StudyError, match=r"not READY after 30s \(11 allocated\)"):
        target.wait_ready(20, timeout=30, on_progress=progress_sink()[1])
    assert clock.monotonic() == 30.0


def test_missing_configuration_reads_as_none(lambda_stub: tuple[Any, Stubber]) -> None:
    """No provisioned concurrency on the alias is None, and removing it again is no error."""
    client, stubber = lambda_stub
    stubber.add_client_error(
        "get_provisioned_concurrency_config",
        "ProvisionedConcurrencyConfigNotFoundException",
        "No Provisioned Concurrency Config found",
        404,
        expected_params=QUALIFIED,
    )
    stubber.add_client_error(
        "delete_provisioned_concurrency_config",
        "ProvisionedConcurrencyConfigNotFoundException",
        "No Provisioned Concurrency Config found",
        404,
        expected_params=QUALIFIED,
    )
    target = LambdaProvisioning(client, FUNCTION, ALIAS, clock=ManualClock())
    assert target.read_config() is None
    target.remove()


def test_put_retries_while_a_change_is_in_progress(lambda_stub: tuple[Any, Stubber]) -> None:
    """ResourceConflictException right after a delete is retried after a pause."""
    client, stubber = lambda_stub
    stubber.add_client_error(
        "put_provisioned_concurrency_config",
        "ResourceConflictException",
        "An update is in progress",
        409,
    )
    queue_put(stubber, 20)
    clock = ManualClock()
    LambdaProvisioning(client, FUNCTION, ALIAS, clock=clock).set_provisioned(20)
    assert clock.sleeps == [10.0]


def test_other_errors_name_the_operation(lambda_stub: tuple[Any, Stubber]) -> None:
    """An access error is one AwsError line with the action and a hint."""
    client, stubber = lambda_stub
    stubber.add_client_error(
        "put_provisioned_concurrency_config", "AccessDeniedException", "not allowed", 403
    )
    target = LambdaProvisioning(client, FUNCTION, ALIAS, clock=ManualClock())
    with pytest.raises(AwsError, match=r"putting provisioned concurrency 5 on orders:live: Access"):
        target.set_provisioned(5)


def test_counter_queries_whole_minutes_and_sums_pages(
    cloudwatch_stub: tuple[Any, Stubber],
) -> None:
    """The query covers the start's minute to the end of now's; every page's values are summed."""
    client, stubber = cloudwatch_stub
    clock = ManualClock(datetime(2026, 3, 1, 12, 5, 10, tzinfo=timezone.utc))
    since = datetime(2026, 3, 1, 12, 3, 25, tzinfo=timezone.utc)
    query = expected_metric_query(
        datetime(2026, 3, 1, 12, 3, tzinfo=timezone.utc),
        datetime(2026, 3, 1, 12, 6, tzinfo=timezone.utc),
    )
    stubber.add_response("get_metric_data", {**metric_response(7, 5), "NextToken": "p2"}, query)
    stubber.add_response(
        "get_metric_data", metric_response(3, first_minute=2), {**query, "NextToken": "p2"}
    )
    counter = CloudWatchInitCounter(client, FUNCTION, "StudyNS", clock=clock)
    assert counter.count(since) == 15
    assert counter.resolution_seconds == 60.0


def test_settle_records_the_count_once_stable(cloudwatch_stub: tuple[Any, Stubber]) -> None:
    """Counts 0, 8, 19, 19, 19 read 30 s apart with a 60 s settle period: 19 is recorded."""
    client, stubber = cloudwatch_stub
    clock = ManualClock(START)
    sums = [(), (8,), (8, 11), (8, 11), (8, 11)]
    for index, values in enumerate(sums):
        end = datetime(2026, 3, 1, 12, 1 + index // 2, tzinfo=timezone.utc)
        stubber.add_response(
            "get_metric_data", metric_response(*values), expected_metric_query(START, end)
        )
    counter = CloudWatchInitCounter(client, FUNCTION, "StudyNS", clock=clock)
    result = wait_for_settled_count(
        lambda: counter.count(START),
        settle=60,
        interval=30,
        timeout=600,
        clock=clock,
        on_progress=progress_sink()[1],
    )
    assert (result.count, result.settled, result.seconds) == (19, True, 120.0)


def test_original_configuration_is_put_back_when_a_step_raises(
    tmp_path: Path,
    lambda_stub: tuple[Any, Stubber],
    cloudwatch_stub: tuple[Any, Stubber],
) -> None:
    """CloudWatch failing mid-study: the alias gets its original 5 back and the error surfaces."""
    lambda_client, lambda_stubber = lambda_stub
    cloudwatch_client, cloudwatch_stubber = cloudwatch_stub
    queue_get(lambda_stubber, "READY", 5, 5)  # the original configuration
    lambda_stubber.add_response("delete_provisioned_concurrency_config", {}, QUALIFIED)
    queue_put(lambda_stubber, 10)
    queue_get(lambda_stubber, "READY", 10, 10)
    cloudwatch_stubber.add_client_error(
        "get_metric_data", "AccessDenied", "not authorized to GetMetricData", 403
    )
    queue_put(lambda_stubber, 5)  # the restore

    clock = ManualClock(START)
    notes: list[str] = []

    class Listener:
        def note(self, message: str) -> None:
            notes.append(message)

        def progress(self, update: WaitProgress) -> None:
            pass

    plan = StudyPlan({"function": FUNCTION, "alias": ALIAS}, (10,), 1, cooldown=0)
    study = Study(
        plan,
        LambdaProvisioning(lambda_client, FUNCTION, ALIAS, clock=clock),
        CloudWatchInitCounter(cloudwatch_client, FUNCTION, "StudyNS", clock=clock),
        StateStore(tmp_path),
        Listener(),
        clock=clock,
    )
    with pytest.raises(AwsError, match="AccessDenied"):
        study.run()
    assert notes[-1].startswith("restored orders:live: provisioned concurrency 5, as before")


def test_failed_restore_says_how_to_do_it_by_hand(lambda_stub: tuple[Any, Stubber]) -> None:
    """If the restore itself fails, the error carries the AWS CLI command that would do it."""
    client, stubber = lambda_stub
    stubber.add_client_error("put_provisioned_concurrency_config", "ServiceException", "boom", 500)
    target = LambdaProvisioning(client, FUNCTION, ALIAS, clock=ManualClock())
    with pytest.raises(AwsError, match="--qualifier live --provisioned-concurrent-executions 5"):
        target.restore(5)


def test_function_facts_and_other_qualifiers(lambda_stub: tuple[Any, Stubber]) -> None:
    """Memory, architecture and namespace come from the alias; other PC configs are listed."""
    client, stubber = lambda_stub
    stubber.add_response(
        "get_function_configuration",
        {
            "FunctionName": FUNCTION,
            "MemorySize": 512,
            "Architectures": ["arm64"],
            "Environment": {"Variables": {"CONCURRENCY_OBSERVER_NAMESPACE": "Mine"}},
            "Layers": [{"Arn": "arn:aws:lambda:us-east-1:123456789012:layer:co:3"}],
        },
        {
            "FunctionName": FUNCTION_ARN,
            "Qualifier": ALIAS,
        },
    )
    stubber.add_response(
        "list_provisioned_concurrency_configs",
        {
            "ProvisionedConcurrencyConfigs": [
                {
                    "FunctionArn": f"{FUNCTION_ARN}:live",
                    "RequestedProvisionedConcurrentExecutions": 10,
                },
                {
                    "FunctionArn": f"{FUNCTION_ARN}:beta",
                    "RequestedProvisionedConcurrentExecutions": 2,
                },
            ]
        },
        {"FunctionName": FUNCTION},
    )
    facts = describe_function(client, FUNCTION_ARN, ALIAS)
    assert (facts.name, facts.memory_mb, facts.architecture) == (FUNCTION, 512, "arm64")
    assert facts.namespace == "Mine"
    assert other_provisioned_qualifiers(client, FUNCTION, ALIAS) == ["beta (2)"]


def test_cost_estimate_by_hand() -> None:
    """Levels 10 and 50 at 512 MB x86_64: GB-seconds and dollars worked out by hand."""
    plan = StudyPlan({}, (10, 50), 1, settle=60, ready_timeout=600, settle_timeout=600)
    estimate = estimate_cost([10, 50], plan, memory_mb=512, architecture="x86_64")
    # expected hold: 120 s READY + 120 s metric delay + 60 s settle = 300 s, one 5-minute block
    assert estimate.gb_seconds == pytest.approx(60 * 0.5 * 300)
    assert estimate.expected_usd == pytest.approx(9000 * 0.0000041667)
    # worst hold: 600 + 600 s = 1200 s, four blocks
    assert estimate.worst_usd == pytest.approx(60 * 0.5 * 1200 * 0.0000041667)
    assert "us-east-1" in estimate.summary("eu-west-1")


def usage_response(shut_down: float, prompt: float, delayed: float) -> Any:
    """A GetMetricData answer for the usage counter: one data point per query."""
    return {
        "MetricDataResults": [
            {
                "Id": query_id,
                "Label": "EnvironmentShutdown",
                "Timestamps": [START],
                "Values": [value],
                "StatusCode": "Complete",
            }
            for query_id, value in (("all", shut_down), ("prompt", prompt), ("delayed", delayed))
        ]
    }


def expected_usage_query(start: datetime, end: datetime) -> dict[str, Any]:
    """The usage counter's GetMetricData request, written out by hand."""
    provisioned = [
        {"Name": "FunctionName", "Value": FUNCTION},
        {"Name": "InitType", "Value": "provisioned-concurrency"},
    ]

    def query(query_id: str, dimensions: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": "StudyNS",
                    "MetricName": "EnvironmentShutdown",
                    "Dimensions": dimensions,
                },
                "Period": 60,
                "Stat": "Sum",
            },
            "ReturnData": True,
        }

    return {
        "MetricDataQueries": [
            query("all", provisioned),
            *(
                query(usage, [*provisioned, {"Name": "FirstInvoke", "Value": usage}])
                for usage in ("prompt", "delayed")
            ),
            *lean_queries(),
        ],
        "StartTime": start,
        "EndTime": end,
        "ScanBy": "TimestampAscending",
    }


def test_usage_counter_reads_shutdowns_and_those_ever_invoked(
    cloudwatch_stub: tuple[Any, Stubber],
) -> None:
    """Provisioned shutdowns 10, of which prompt 3 and delayed 1: 10 shut down, 4 ever invoked."""
    client, stubber = cloudwatch_stub
    clock = ManualClock(datetime(2026, 3, 1, 12, 5, 10, tzinfo=timezone.utc))
    query = expected_usage_query(
        datetime(2026, 3, 1, 12, 3, tzinfo=timezone.utc),
        datetime(2026, 3, 1, 12, 6, tzinfo=timezone.utc),
    )
    stubber.add_response("get_metric_data", usage_response(10, 3, 1), query)
    counter = CloudWatchUsageCounter(client, FUNCTION, "StudyNS", clock=clock)
    assert counter.usage(datetime(2026, 3, 1, 12, 3, 25, tzinfo=timezone.utc)) == Usage(10, 4)


def _lean_response(**values: float) -> Any:
    """A GetMetricData answer: one data point per query id given."""
    return {
        "MetricDataResults": [
            {
                "Id": query_id,
                "Label": query_id,
                "Timestamps": [START],
                "Values": [value],
                "StatusCode": "Complete",
            }
            for query_id, value in values.items()
        ]
    }


def test_lean_counts_come_from_environment_delta_and_the_records(
    cloudwatch_stub: tuple[Any, Stubber],
) -> None:
    """EnvironmentDelta Sum 2 over 6 samples: 4 inits, 2 shutdowns; of the records shut down
    since the start, one provisioned environment prompt and one never: 1 ever invoked."""
    from tests.unit.figures.test_records import _record

    client, stubber = cloudwatch_stub
    clock = ManualClock(datetime(2026, 3, 1, 12, 5, 10, tzinfo=timezone.utc))
    since = datetime(2026, 3, 1, 12, 3, 25, tzinfo=timezone.utc)
    stubber.add_response("get_metric_data", _lean_response(inits=0, net=2, samples=6))
    inits = CloudWatchInitCounter(client, FUNCTION, "StudyNS", clock=clock)
    assert inits.count(since) == 4
    stubber.add_response(
        "get_metric_data", _lean_response(all=0, prompt=0, delayed=0, net=2, samples=6)
    )
    offset = (since - datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)).total_seconds()
    records = [
        _record("a", "provisioned-concurrency", offset - 60, offset + 5, firstInvoke="prompt")
        | {"functionName": FUNCTION},
        _record("b", "provisioned-concurrency", offset - 60, offset + 6, firstInvoke="never")
        | {"functionName": FUNCTION},
        _record("c", "provisioned-concurrency", offset - 90, offset - 1, firstInvoke="prompt")
        | {"functionName": FUNCTION},  # shut down before the level was removed: not counted
    ]
    usage = CloudWatchUsageCounter(
        client, FUNCTION, "StudyNS", clock=clock, records=lambda _since, _until: records
    )
    assert usage.usage(since) == Usage(2, 1)
