"""``report --cross-check``: log streams from moto's Logs, Logs Insights through the Stubber."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from click.testing import CliRunner
from moto import mock_aws

from concurrency_observer.aws import session
from concurrency_observer.aws.cross_check import (
    DIFFERENCES,
    INIT_START_QUERY,
    count_init_start_lines,
    count_streams_created,
    cross_check,
    stream_marker,
)
from concurrency_observer.cli.report import report as report_command

from .test_report_moto import (
    ENVS,
    REGION,
    WINDOW,
    Seeded,
    aws_env,
    cloudwatch,
    expected_document,
    seeded,
)

__all__ = ["aws_env", "cloudwatch", "seeded"]  # fixtures used by name

UTC = timezone.utc
START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
GROUP = "/aws/lambda/orders"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@pytest.fixture
def logs_client() -> Any:
    """A real botocore CloudWatch Logs client (for the Stubber)."""
    return boto3.client(
        "logs", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture
def moto_logs(aws_env: None) -> Iterator[Any]:
    """CloudWatch Logs on moto's in-process backend."""
    with mock_aws():
        yield session.client("logs", REGION)


def test_streams_from_moto_by_version(moto_logs: Any) -> None:
    """moto's DescribeLogStreams: streams created now, counted per version from their names."""
    moto_logs.create_log_group(logGroupName=GROUP)
    names = ["2026/11/27/[$LATEST]aa", "2026/11/27/[$LATEST]bb", "2026/11/27/[7]cc"]
    for name in names:
        moto_logs.create_log_stream(logGroupName=GROUP, logStreamName=name)
        moto_logs.put_log_events(
            logGroupName=GROUP,
            logStreamName=name,
            logEvents=[{"timestamp": _ms(datetime.now(UTC)), "message": "INIT_START Runtime"}],
        )
    now = datetime.now(UTC)
    around = (now - timedelta(minutes=5), now + timedelta(minutes=5))
    assert count_streams_created(moto_logs, GROUP, *around) == 3
    assert count_streams_created(moto_logs, GROUP, *around, marker="[7]") == 1
    assert count_streams_created(moto_logs, GROUP, *around, marker="[$LATEST]") == 2
    before = (now - timedelta(hours=3), now - timedelta(hours=2))
    assert count_streams_created(moto_logs, GROUP, *before) == 0


def test_a_shared_group_counts_the_functions_own_streams(moto_logs: Any) -> None:
    """A custom group shared by three functions: only streams named /<function>[version] count."""
    group = "/shared/app"
    moto_logs.create_log_group(logGroupName=group)
    names = [
        "2026/11/27/orders[$LATEST]aa",
        "2026/11/27/orders[3]bb",
        "2026/11/27/orders-eu[$LATEST]cc",  # another function whose name starts the same
        "2026/11/27/payments[$LATEST]dd",
    ]
    for name in names:
        moto_logs.create_log_stream(logGroupName=group, logStreamName=name)
        moto_logs.put_log_events(
            logGroupName=group,
            logStreamName=name,
            logEvents=[{"timestamp": _ms(datetime.now(UTC)), "message": "INIT_START Runtime"}],
        )
    now = datetime.now(UTC)
    around = (now - timedelta(minutes=5), now + timedelta(minutes=5))
    assert stream_marker("orders", None, shared=True) == "/orders["
    assert stream_marker("orders", "3", shared=True) == "/orders[3]"
    assert stream_marker("orders", None, shared=False) is None
    assert count_streams_created(moto_logs, group, *around, "/orders[") == 2
    assert count_streams_created(moto_logs, group, *around, "/orders[3]") == 1
    assert count_streams_created(moto_logs, group, *around, "/payments[") == 1


def test_a_shared_group_scopes_the_insights_query(logs_client: Any) -> None:
    """In a custom group the INIT_START query keeps the function's streams (and version)."""
    stubber = Stubber(logs_client)
    stubber.add_response(
        "describe_log_streams",
        {"logStreams": []},
        {"logGroupName": "/shared/app", "orderBy": "LastEventTime", "descending": True},
    )
    expected = (
        f"{INIT_START_QUERY} | filter @logStream like /\\/orders\\[3\\]/"
        " | stats count(*) as initStarts"
    )
    stubber.add_response(
        "start_query",
        {"queryId": "q-2"},
        {"logGroupName": "/shared/app", "startTime": ANY, "endTime": ANY, "queryString": expected},
    )
    stubber.add_response("get_query_results", _query_results("Complete", "4"), {"queryId": "q-2"})
    with stubber:
        found = cross_check(
            logs_client,
            "orders",
            4,
            start=START,
            end=END,
            version="3",
            log_group="/shared/app",
            sleep=lambda _s: None,
        )
    assert (found.init_start_lines, found.log_streams_created) == (4, 0)
    assert any("custom log group" in note for note in found.notes)


def _stream(name: str, created: datetime, last: datetime) -> dict[str, Any]:
    return {
        "logStreamName": name,
        "creationTime": _ms(created),
        "firstEventTimestamp": _ms(created),
        "lastEventTimestamp": _ms(last),
        "lastIngestionTime": _ms(last),
        "arn": f"arn:aws:logs:us-east-1:123456789012:log-group:{GROUP}:log-stream:{name}",
        "storedBytes": 0,
    }


def test_streams_stop_once_older_than_the_window(logs_client: Any) -> None:
    """Pages are followed until a stream's last event is over an hour before the window."""
    minute = timedelta(minutes=1)
    stubber = Stubber(logs_client)
    request = {"logGroupName": GROUP, "orderBy": "LastEventTime", "descending": True}
    stubber.add_response(
        "describe_log_streams",
        {
            "logStreams": [
                _stream("after", END + minute, END + 2 * minute),  # created after the window
                _stream("a", START + minute, END + minute),
                _stream("spans", START - minute, START + 5 * minute),  # created before start
            ],
            "nextToken": "t",
        },
        request,
    )
    stubber.add_response(
        "describe_log_streams",
        {
            "logStreams": [
                _stream("b", START + 2 * minute, START + 3 * minute),
                _stream("old", START - 3 * 60 * minute, START - 61 * minute),  # stops the scan
                _stream("never-read", START + minute, START - 62 * minute),
            ],
            "nextToken": "u",
        },
        {**request, "nextToken": "t"},
    )
    with stubber:
        assert count_streams_created(logs_client, GROUP, START, END) == 2
    stubber.assert_no_pending_responses()  # the third page ("u") was never asked for


def _query_results(status: str, count: str | None) -> dict[str, Any]:
    """GetQueryResults in the API's shape: rows of field/value cells, and the statistics."""
    results = [] if count is None else [[{"field": "initStarts", "value": count}]]
    return {
        "results": results,
        "statistics": {"recordsMatched": 12.0, "recordsScanned": 900.0, "bytesScanned": 81234.0},
        "status": status,
    }


def test_insights_query_polls_until_complete(logs_client: Any) -> None:
    """StartQuery over the window, GetQueryResults while Running, the count once Complete."""
    stubber = Stubber(logs_client)
    stubber.add_response(
        "start_query",
        {"queryId": "q-1"},
        {
            "logGroupName": GROUP,
            "startTime": int(START.timestamp()),
            "endTime": int(END.timestamp()) - 1,
            "queryString": f"{INIT_START_QUERY} | filter @logStream like /\\[7\\]/"
            " | stats count(*) as initStarts",
        },
    )
    stubber.add_response("get_query_results", _query_results("Running", None), {"queryId": "q-1"})
    stubber.add_response("get_query_results", _query_results("Complete", "12"), {"queryId": "q-1"})
    naps: list[float] = []
    with stubber:
        count = count_init_start_lines(logs_client, GROUP, START, END, "[7]", sleep=naps.append)
    assert count == 12
    assert naps == [0.5]


@pytest.mark.parametrize(
    ("status", "count", "expected"),
    [("Complete", None, 0), ("Failed", None, None), ("Complete", "3", 3)],
)
def test_insights_outcomes(
    logs_client: Any, status: str, count: str | None, expected: int | None
) -> None:
    """No matching line is 0; a failed query is unknown (None), not 0."""
    stubber = Stubber(logs_client)
    stubber.add_response(
        "start_query",
        {"queryId": "q"},
        {"logGroupName": GROUP, "startTime": ANY, "endTime": ANY, "queryString": ANY},
    )
    stubber.add_response("get_query_results", _query_results(status, count), {"queryId": "q"})
    with stubber:
        assert (
            count_init_start_lines(logs_client, GROUP, START, END, sleep=lambda _s: None)
            == expected
        )


def test_insights_gives_up_after_the_timeout(logs_client: Any) -> None:
    """A query still running at the timeout: None (the report then says to run it again)."""
    stubber = Stubber(logs_client)
    stubber.add_response(
        "start_query",
        {"queryId": "q"},
        {"logGroupName": GROUP, "startTime": ANY, "endTime": ANY, "queryString": ANY},
    )
    for _ in range(3):
        stubber.add_response("get_query_results", _query_results("Running", None), {"queryId": "q"})
    now = [0.0]

    def nap(seconds: float) -> None:
        now[0] += seconds

    with stubber:
        result = count_init_start_lines(
            logs_client, GROUP, START, END, timeout=1.0, sleep=nap, clock=lambda: now[0]
        )
    assert result is None


def test_missing_log_group_is_a_note(logs_client: Any) -> None:
    """ResourceNotFoundException: both counts unknown, and a note naming the group."""
    stubber = Stubber(logs_client)
    stubber.add_client_error(
        "describe_log_streams", "ResourceNotFoundException", http_status_code=400
    )
    with stubber:
        found = cross_check(logs_client, "orders", 5, start=START, end=END)
    assert (found.init_start_lines, found.log_streams_created) == (None, None)
    assert "log group /aws/lambda/orders not found" in found.notes[0]


def test_cli_cross_check(seeded: Seeded, logs_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--cross-check`` puts both counts and the reasons they may differ beside EnvironmentInit."""
    stubber = Stubber(logs_client)
    group = f"/aws/lambda/{seeded.function}"
    inside = seeded.start + timedelta(minutes=1)
    # The records first (none here: the full profile's metrics answer), then the cross-check.
    stubber.add_response(
        "filter_log_events",
        {"events": [], "searchedLogStreams": []},
        {"logGroupName": group, "startTime": ANY, "endTime": ANY, "filterPattern": ANY},
    )
    stubber.add_response(
        "describe_log_streams",
        {"logStreams": [_stream("2026/11/27/[1]x", inside, inside + timedelta(minutes=3))]},
        {"logGroupName": group, "orderBy": "LastEventTime", "descending": True},
    )
    stubber.add_response(
        "start_query",
        {"queryId": "q"},
        {"logGroupName": group, "startTime": ANY, "endTime": ANY, "queryString": ANY},
    )
    stubber.add_response("get_query_results", _query_results("Complete", "11"), {"queryId": "q"})
    real_client = session.client

    def client(service: str, region: str | None = None, endpoint_url: str | None = None) -> Any:
        return logs_client if service == "logs" else real_client(service, region, endpoint_url)

    monkeypatch.setattr(session, "client", client)
    args = [
        "--function", seeded.function, "--namespace", seeded.namespace, "--region", REGION,
        "--start", seeded.start.isoformat(), "--end", (seeded.start + WINDOW).isoformat(),
        "--lookback", "30m", "--cross-check", "--format", "json",
    ]  # fmt: skip
    with stubber:
        result = CliRunner().invoke(report_command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)["cross_check"]
    assert found == {
        "log_group": group,
        "environment_init": expected_document(ENVS, seeded.start, WINDOW)["inits"]["total"],
        "init_start_lines": 11,
        "log_streams_created": 1,
        "notes": [],
        "legitimate_differences": list(DIFFERENCES),
    }


def test_reader_policy_grants_every_call_report_makes() -> None:
    """The reader policy names every action of report (its records included), --provisioned auto
    and --cross-check."""
    from pathlib import Path

    policy = json.loads(
        (Path(__file__).parents[3] / "examples" / "iam-reader-policy.json").read_text()
    )
    granted: set[str] = set()
    for statement in policy["Statement"]:
        actions = statement["Action"]
        granted.update([actions] if isinstance(actions, str) else actions)
    assert granted == {
        "cloudwatch:GetMetricData",
        "cloudwatch:ListMetrics",
        "lambda:ListProvisionedConcurrencyConfigs",
        "lambda:GetProvisionedConcurrencyConfig",
        "logs:StartQuery",
        "logs:GetQueryResults",
        "logs:DescribeLogStreams",
        "logs:FilterLogEvents",
        "lambda:GetFunctionConfiguration",
    }
