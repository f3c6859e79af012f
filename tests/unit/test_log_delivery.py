"""The harness's log delivery: each environment's output into /aws/lambda/<function>, as Lambda."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from moto import mock_aws

from concurrency_observer.aws.records import read_records
from concurrency_observer.local.log_delivery import LambdaLogDelivery, batches, stream_name

REGION = "us-east-1"
# A plausible record: the reader refuses instants outside its window's span (a minute ago here).
_SHUTDOWN_MS = int(time.time() * 1000) - 30_000
RECORD = (
    '{"concurrencyObserver":"environment/1","functionName":"fn","functionVersion":"$LATEST",'
    '"initType":"on-demand","environmentId":"00000000000000a1","engine":"python",'
    f'"metrics":"lean","initTime":{_SHUTDOWN_MS - 1000},"shutdownTime":{_SHUTDOWN_MS},'
    '"shutdownReason":"spindown","lifetimeMs":1000,"idleMs":1}'
)


@pytest.fixture
def logs() -> Any:
    """A moto CloudWatch Logs client."""
    with mock_aws():
        yield boto3.client("logs", region_name=REGION)


def test_each_environment_gets_a_lambda_like_stream_of_its_lines(logs: Any) -> None:
    """Two environments: two streams in /aws/lambda/fn, every non-empty line an event, stamped."""
    delivery = LambdaLogDelivery(logs, "fn")
    stamp = time.time()
    first = delivery.deliver("START RequestId: 1\n\n" + RECORD + "\n", stamp)
    second = delivery.deliver("another environment\n", stamp)
    assert first is not None
    assert second is not None
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", first)
    streams = logs.describe_log_streams(logGroupName="/aws/lambda/fn")["logStreams"]
    assert {s["logStreamName"] for s in streams} == {first, second}
    events = logs.get_log_events(logGroupName="/aws/lambda/fn", logStreamName=first)["events"]
    # The RIE's START line is written as Lambda's (local.lambda_log_lines).
    assert [e["message"] for e in events] == ["START RequestId: 1 Version: $LATEST", RECORD]
    assert {e["timestamp"] for e in events} == {int(stamp * 1000)}
    assert (delivery.streams, delivery.failures) == (2, 0)


def test_the_delivered_record_is_read_back_by_reports_reader(logs: Any) -> None:
    """What the harness delivers, ``aws.records`` finds: the same path as on AWS."""
    delivery = LambdaLogDelivery(logs, "fn")
    delivery.deliver("noise\n" + RECORD + "\n")
    now = datetime.now(timezone.utc)
    scan = read_records(logs, "/aws/lambda/fn", now - timedelta(minutes=1), now)
    assert [r["environmentId"] for r in scan.records] == ["00000000000000a1"]


def test_a_failed_delivery_is_counted_never_raised() -> None:
    """An unreachable Logs endpoint loses the lines, as Lambda would, and the run goes on."""

    class Broken:
        class exceptions:
            ResourceAlreadyExistsException = KeyError

        def create_log_group(self, **_: Any) -> None:
            raise ConnectionError("no route")

    delivery = LambdaLogDelivery(Broken(), "fn")
    assert delivery.deliver("a line\n") is None
    assert delivery.failures == 1
    assert "ConnectionError" in delivery.errors[0]


def test_batches_stay_within_put_log_events_limits() -> None:
    """At most 10,000 events and 1 MB (26 bytes more per event) a call; long lines are cut."""
    many = list(batches(["x"] * 25_000))
    assert [len(batch) for batch in many] == [10_000, 10_000, 5_000]
    big = list(batches(["y" * 200_000] * 6))
    assert all(sum(len(line) + 26 for line in batch) <= 1_048_576 for batch in big)
    (cut,) = next(iter(batches(["z" * 300_000])))
    assert len(cut) == 256 * 1024 - 26
    assert stream_name("7", __import__("datetime").datetime(2026, 1, 2)).startswith(
        "2026/01/02/[7]"
    )
