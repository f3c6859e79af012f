"""Each function counts its own records, in a log group shared by several and beside echoed ones.

Built on moto: three functions log into one custom group (one of them with two versions), each
stream named as Lambda names them there (``YYYY/MM/DD/<function>[<version>]<id>``); a fourth
function logs into its default group and echoes another's records (as a log processor or a test
echo prints what it receives). Every figure of ``report``, its JSON and ``report --all`` must equal
the truth worked out from each function's own environments; the ranking scans the shared group
once; the dashboard's queries name the function.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.stub import Stubber
from click.testing import CliRunner

from concurrency_observer.aws.dashboard import dashboard_body
from concurrency_observer.aws.ranking import rank_functions
from concurrency_observer.aws.report import ReportRequest, read_report, resolve_window
from concurrency_observer.aws.session import client
from concurrency_observer.cli.report import report as report_command
from concurrency_observer.schema import ENVIRONMENT_DELTA, FUNCTION_NAME, INIT_ON_DEMAND, INIT_TYPE
from concurrency_observer.schema import INIT_PROVISIONED as PROVISIONED
from tests.unit.aws.test_report_lean_moto import _record
from tests.unit.aws.test_report_moto import (
    PERIOD,
    REGION,
    WINDOW,
    Env,
    aws_env,
    cloudwatch,
    expected_document,
)

__all__ = ["aws_env", "cloudwatch"]  # fixtures used by name

# Seconds after the window start (30 minutes), as in test_report_moto.
API = (
    Env(INIT_ON_DEMAND, 10, 300, "spindown", 4, 1.0, 20.0, version="1"),
    Env(INIT_ON_DEMAND, 50, 900, "timeout", 0, None, 850.0, version="1"),
    Env(PROVISIONED, 30, 1200, "spindown", 2, 40.0, 100.0, version="2"),
    Env(INIT_ON_DEMAND, 400, 700, "spindown", 9, 0.5, 10.0, version="2"),
    Env(PROVISIONED, 20, 1100, "spindown", 0, None, 1080.0, version="1"),
)
WORKER = (
    Env(INIT_ON_DEMAND, 100, 500, "spindown", 1, 2.0, 300.0),
    Env(INIT_ON_DEMAND, 200, 1000, "spindown", 6, 3.0, 50.0),
    Env(INIT_ON_DEMAND, 1500),
    Env(PROVISIONED, 15, 1600, "spindown", 30, 0.1, 5.0),
)
CRON = (
    Env(INIT_ON_DEMAND, 60, 120, "spindown", 0, None, 60.0),
    Env(PROVISIONED, 0, 1300, "timeout", 1, 900.0, 200.0),
)
ECHO = (
    Env(INIT_ON_DEMAND, 5, 1700, "spindown", 3, 1.0, 500.0),
    Env(PROVISIONED, 10),
)
FIELDS = (
    "inits",
    "shutdowns",
    "lifetime_seconds",
    "idle_time_seconds",
    "time_to_first_invoke_seconds",
    "invocations_per_environment",
    "environments_by_init_type",
    "shares",
)


@dataclass(frozen=True)
class Account:
    """The four functions, their groups and what each one's own records weigh."""

    namespace: str
    start: datetime
    shared: str
    names: dict[str, str]  # api, worker, cron, echo -> function name
    own_bytes: dict[str, int]  # function -> UTF-8 bytes of its own record lines

    def group_of(self, function: str) -> str:
        """Where the function logs: the shared group, or the echo's default one."""
        return f"/aws/lambda/{function}" if function == self.names["echo"] else self.shared


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _seed(
    cloudwatch: Any,
    logs: Any,
    account: Account,
    function: str,
    envs: Sequence[Env],
    *,
    first_index: int,
    echoed: Sequence[str] = (),
) -> None:
    """EnvironmentDelta per [FunctionName, InitType], a record per shutdown in its own stream
    named as Lambda names it in the group; ``echoed``: lines the function printed as received."""
    group, t0 = account.group_of(function), account.start
    shared = group == account.shared
    data = []
    for offset, env in enumerate(envs):
        dimensions = [
            {"Name": FUNCTION_NAME, "Value": function},
            {"Name": INIT_TYPE, "Value": env.init_type},
        ]
        moments = [(env.init_at, 1.0)] + (
            [] if env.shutdown_at is None else [(env.shutdown_at, -1.0)]
        )
        for at, value in moments:
            data.append(
                {
                    "MetricName": ENVIRONMENT_DELTA,
                    "Dimensions": dimensions,
                    "Timestamp": t0 + timedelta(seconds=at),
                    "Value": value,
                    "Unit": "Count",
                }
            )
        if env.shutdown_at is None:
            continue
        prefix = f"{t0:%Y/%m/%d}/" + (function if shared else "")
        stream = f"{prefix}[{env.version}]{uuid.uuid4().hex}"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        line = json.dumps(_record(env, first_index + offset, function, t0), separators=(",", ":"))
        account.own_bytes[function] = account.own_bytes.get(function, 0) + len(line.encode())
        stamp = _ms(t0 + timedelta(seconds=env.shutdown_at))
        events = [{"timestamp": stamp, "message": line}]
        events += [{"timestamp": stamp, "message": f"received: {echo}"} for echo in echoed]
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
    cloudwatch.put_metric_data(Namespace=account.namespace, MetricData=data)


@pytest.fixture
def account(cloudwatch: Any) -> Account:
    """The four functions written to moto; the window starts 40 minutes ago."""
    suffix = uuid.uuid4().hex[:8]
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=40)
    names = {role: f"{role}-{suffix}" for role in ("api", "worker", "cron", "echo")}
    found = Account(f"Test/{suffix}", start, f"/shared/app-{suffix}", names, {})
    logs = client("logs", REGION)
    logs.create_log_group(logGroupName=found.shared)
    logs.create_log_group(logGroupName=f"/aws/lambda/{names['echo']}")
    _seed(cloudwatch, logs, found, names["api"], API, first_index=0x100)
    _seed(cloudwatch, logs, found, names["worker"], WORKER, first_index=0x200)
    _seed(cloudwatch, logs, found, names["cron"], CRON, first_index=0x300)
    api_lines = [
        json.dumps(_record(env, 0x100 + i, names["api"], start), separators=(",", ":"))
        for i, env in enumerate(API)
    ]
    _seed(cloudwatch, logs, found, names["echo"], ECHO, first_index=0x400, echoed=api_lines)
    return found


TRUTH = {"api": API, "worker": WORKER, "cron": CRON, "echo": ECHO}


def _window_args(account: Account) -> list[str]:
    return [
        "--namespace", account.namespace, "--region", REGION,
        "--start", account.start.isoformat(), "--end", (account.start + WINDOW).isoformat(),
        "--lookback", "30m", "--period", str(PERIOD),
    ]  # fmt: skip


def _report(account: Account, function: str, *extra: str) -> dict[str, Any]:
    args = ["--function", function, "--log-group", account.group_of(function), "--format", "json"]
    result = CliRunner().invoke(
        report_command, [*args, *_window_args(account), *extra], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def _shut_down_in_window(envs: Sequence[Env]) -> int:
    return sum(1 for e in envs if e.shutdown_at is not None and 0 <= e.shutdown_at < 1800)


@pytest.mark.parametrize("role", sorted(TRUTH))
def test_each_function_reports_its_own_truth(account: Account, role: str) -> None:
    """Every figure of each function's report (JSON) equals its own environments' truth; the
    bill counts its own records and bytes; the notes say how many records were others'."""
    function = account.names[role]
    document = _report(account, function)
    expected = expected_document(TRUTH[role], account.start, WINDOW)
    assert document["figures_source"] == "records"
    for key in FIELDS:
        assert document[key] == expected[key], (role, key)
    totals = [p["total"] for p in document["live"]["series"]]
    assert totals == [p["total"] for p in expected["live"]["series"]]
    bill = document["observer_bill"]
    assert bill["records"] == _shut_down_in_window(TRUTH[role])
    assert bill["record_bytes"] == account.own_bytes[function]
    # Records in its group that are not its own: the shared group's other two functions', or the
    # api's records the echo printed (one copy per echo stream).
    shared = {role: _shut_down_in_window(TRUTH[role]) for role in ("api", "worker", "cron")}
    others = {
        "api": shared["worker"] + shared["cron"],
        "worker": shared["api"] + shared["cron"],
        "cron": shared["api"] + shared["worker"],
        "echo": shared["api"],
    }[role]
    read = document["records_read"]
    assert (read["records"], read["other_functions"], read["refused_total"]) == (
        _shut_down_in_window(TRUTH[role]),
        others,
        0,
    )
    said = [n for n in document["notes"] if "belong to other functions" in n]
    assert said == [
        f"{others} environment records in {account.group_of(function)} belong to other "
        "functions (their own functionName): not counted"
    ]


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_version_reports_its_own_records(account: Account, version: str) -> None:
    """``--version``: only the records whose functionVersion is that version."""
    document = _report(account, account.names["api"], "--version", version)
    mine = tuple(e for e in API if e.version == version)
    expected = expected_document(mine, account.start, WINDOW)
    for key in ("inits", "lifetime_seconds", "invocations_per_environment", "idle_time_seconds"):
        assert document[key] == expected[key], key
    assert document["shutdowns"]["total"] == expected["shutdowns"]["total"]
    assert document["observer_bill"]["records"] == len(mine)
    assert document["records_read"]["other_functions"] == (
        _shut_down_in_window(WORKER) + _shut_down_in_window(CRON)
    )


def test_the_ranking_scans_each_group_once(cloudwatch: Any, account: Account) -> None:
    """``report --all``: each function's group found from its LoggingConfig, the shared group
    scanned once (FilterLogEvents counted on the wire), every share equal to its report's."""
    window = resolve_window(
        now=account.start + WINDOW,
        period=PERIOD,
        lookback=timedelta(minutes=30),
        start=account.start,
        end=account.start + WINDOW,
    )
    logs = client("logs", REGION)
    calls: list[str] = []
    logs.meta.events.register(
        "before-parameter-build.logs.FilterLogEvents",
        lambda params, **_: calls.append(params["logGroupName"]),
    )
    lambda_client = client("lambda", REGION)
    stubber = Stubber(lambda_client)
    for function in sorted(account.names.values()):
        stubber.add_response(
            "get_function_configuration",
            {
                "FunctionName": function,
                "LoggingConfig": {"LogFormat": "Text", "LogGroup": account.group_of(function)},
            },
            {"FunctionName": function},
        )
    with stubber:
        ranking = rank_functions(
            cloudwatch, account.namespace, window, logs=logs, lambda_client=lambda_client
        )
    assert sorted(calls) == sorted([account.shared, f"/aws/lambda/{account.names['echo']}"])
    assert ranking.records is not None
    assert ranking.records.filter_log_events_calls == len(calls) == 2
    assert f"(FilterLogEvents, {len(calls)} calls)" in ranking.notes[0]
    assert ranking.to_dict()["records"]["filter_log_events_calls"] == 2
    by_name = {rank.function_name: rank for rank in ranking.functions}
    for role, envs in TRUTH.items():
        rank = by_name[account.names[role]]
        expected = expected_document(envs, account.start, WINDOW)
        assert rank.created == expected["inits"]["total"], role
        assert rank.shut_down == expected["shutdowns"]["total"], role
        assert rank.never_invoked_share == expected["shares"]["never_invoked"], role
        assert rank.proactive_share == expected["shares"]["proactive"], role


def test_report_all_prints_its_filter_log_events_calls(account: Account) -> None:
    """The table says how many FilterLogEvents calls the whole ranking made."""
    result = CliRunner().invoke(
        report_command, ["--all", *_window_args(account)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "FilterLogEvents, " in result.stdout
    assert " calls)" in result.stdout


def test_read_report_in_a_shared_group_matches_the_cli(cloudwatch: Any, account: Account) -> None:
    """The library path (as ``simulate`` uses it) applies the same rule as the CLI."""
    window = resolve_window(
        now=account.start + WINDOW,
        period=PERIOD,
        lookback=timedelta(minutes=30),
        start=account.start,
        end=account.start + WINDOW,
    )
    request = ReportRequest(account.names["worker"], window, account.namespace)
    found = read_report(cloudwatch, request, logs=client("logs", REGION), log_group=account.shared)
    assert found.observer_bill is not None
    assert found.observer_bill.records == _shut_down_in_window(WORKER)
    assert found.records_read is not None
    assert found.records_read.other_functions == 5 + 2


def test_the_dashboard_queries_name_the_function(account: Account) -> None:
    """Every Logs Insights widget over the shared group filters on the function's own name."""
    for role in ("api", "worker", "cron"):
        function = account.names[role]
        body = dashboard_body(function, account.namespace, REGION, log_group=account.shared)
        queries = [w["properties"]["query"] for w in body["widgets"] if w["type"] == "log"]
        assert queries
        assert all(f'| filter functionName = "{function}" |' in q for q in queries)
