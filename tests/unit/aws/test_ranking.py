"""``report --all``: every function discovered and ranked, figures checked against the seeds."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from click.testing import CliRunner

from concurrency_observer.aws.ranking import LAMBDA_NAMESPACE, NamespacedQuery, rank_functions
from concurrency_observer.aws.report import NoMetricsError, resolve_window
from concurrency_observer.cli.report import report as report_command
from concurrency_observer.errors import UserError
from concurrency_observer.reporting.ranking import CSV_COLUMNS
from concurrency_observer.schema import (
    FIRST_INVOKE_DELAYED,
    FIRST_INVOKE_NEVER,
    FUNCTION_NAME,
    INIT_ON_DEMAND,
    INIT_PROVISIONED,
)

from .test_report_moto import ENVS, PERIOD, REGION, WINDOW, Env, aws_env, cloudwatch, seed

__all__ = ["aws_env", "cloudwatch"]  # fixtures used by name

# A second, smaller function: two PC environments never invoked, one on-demand proactive.
OTHER = (
    Env(INIT_PROVISIONED, 60, 600, "spindown", 0, None, 540.0),
    Env(INIT_PROVISIONED, 65, 1200, "spindown", 0, None, 1135.0),
    Env(INIT_ON_DEMAND, 100, 700, "spindown", 4, 30.0, 20.0),
)


def expected_row(envs: tuple[Env, ...], peak_concurrency: float) -> dict[str, Any]:
    """The ranking's figures for one function, worked out from its environments."""
    end = WINDOW.total_seconds()
    born = [e for e in envs if 0 <= e.init_at < end]
    gone = [e for e in envs if e.shutdown_at is not None and 0 <= e.shutdown_at < end]
    classes = [e.first_invoke for e in gone if e.first_invoke is not None]
    on_demand = [e.first_invoke for e in gone if e.init_type == INIT_ON_DEMAND and e.first_invoke]
    peak = max(
        sum(
            e.init_at < (m + 1) * PERIOD
            and (e.shutdown_at is None or e.shutdown_at >= (m + 1) * PERIOD)
            for e in envs
        )
        for m in range(int(end // PERIOD))
    )
    return {
        "created": len(born),
        "shut_down": len(gone),
        "never_invoked_share": classes.count(FIRST_INVOKE_NEVER) / len(classes),
        "proactive_share": on_demand.count(FIRST_INVOKE_DELAYED) / len(on_demand),
        "peak_live": peak,
        "peak_concurrent_executions": peak_concurrency,
        "over_provisioning_ratio": peak / peak_concurrency,
    }


def _seed_concurrency(cloudwatch: Any, function: str, start: datetime, values: list[float]) -> None:
    """Lambda's ConcurrentExecutions for the function, one value per minute of the window."""
    cloudwatch.put_metric_data(
        Namespace=LAMBDA_NAMESPACE,
        MetricData=[
            {
                "MetricName": "ConcurrentExecutions",
                "Dimensions": [{"Name": FUNCTION_NAME, "Value": function}],
                "Timestamp": start + timedelta(minutes=minute, seconds=30),
                "Value": value,
                "Unit": "Count",
            }
            for minute, value in enumerate(values)
        ],
    )


def _seeded(cloudwatch: Any) -> tuple[str, datetime, dict[str, str]]:
    suffix = uuid.uuid4().hex[:8]
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=40)
    namespace = f"Rank/{suffix}"
    names = {"big": f"big-{suffix}", "small": f"small-{suffix}"}
    seed(cloudwatch, namespace, names["big"], start, ENVS)
    seed(cloudwatch, namespace, names["small"], start, OTHER)
    _seed_concurrency(cloudwatch, names["big"], start, [1, 3, 2])
    _seed_concurrency(cloudwatch, names["small"], start, [1, 1])
    return namespace, start, names


def test_ranking_equals_the_hand_computed_figures(cloudwatch: Any) -> None:
    """Both functions discovered; every column matches the environments' own arithmetic."""
    namespace, start, names = _seeded(cloudwatch)
    window = resolve_window(
        now=datetime.now(timezone.utc),
        start=start,
        end=start + WINDOW,
        lookback=timedelta(minutes=30),
    )
    ranking = rank_functions(cloudwatch, namespace, window)
    rows = {f.function_name: f.to_dict() for f in ranking.functions}
    assert set(rows) == set(names.values())
    for key, envs, peak in (("big", ENVS, 3.0), ("small", OTHER, 1.0)):
        row = rows[names[key]]
        assert row.pop("function") == names[key]
        assert row == expected_row(envs, peak), key
    assert [f.function_name for f in ranking.functions] == [names["big"], names["small"]]
    by_share = rank_functions(cloudwatch, namespace, window, "never-invoked")
    assert by_share.functions[0].function_name == names["small"]  # 2 of 3 never invoked


def test_cli_all_json_and_csv(cloudwatch: Any) -> None:
    """``report --all`` prints the same figures as JSON and as one CSV row per function."""
    namespace, start, names = _seeded(cloudwatch)
    base = [
        "--all", "--namespace", namespace, "--region", REGION,
        "--start", start.isoformat(), "--end", (start + WINDOW).isoformat(), "--lookback", "30m",
    ]  # fmt: skip
    result = CliRunner().invoke(report_command, [*base, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["namespace"] == namespace
    assert [f["function"] for f in document["functions"]] == [names["big"], names["small"]]
    result = CliRunner().invoke(report_command, [*base, "--format", "csv"], catch_exceptions=False)
    table = list(csv.reader(io.StringIO(result.stdout)))
    assert tuple(table[0]) == CSV_COLUMNS
    assert table[1][:3] == [
        names["big"],
        *(str(document["functions"][0][k]) for k in ("created", "shut_down")),
    ]
    wide = {"COLUMNS": "150"}  # rich's width: the seeded names then fit on one line
    result = CliRunner().invoke(report_command, base, env=wide, catch_exceptions=False)
    assert names["small"] in result.stdout
    assert "67%" in result.stdout  # small: 2 of 3 classified shutdowns never invoked


def test_empty_namespace_is_one_line(cloudwatch: Any) -> None:
    """No function at all: a NoMetricsError naming the namespace."""
    window = resolve_window(now=datetime.now(timezone.utc), since=timedelta(hours=1))
    with pytest.raises(NoMetricsError, match="no functions with concurrency-observer metrics"):
        rank_functions(cloudwatch, f"Empty/{uuid.uuid4().hex[:8]}", window)


@pytest.mark.parametrize(
    "arguments",
    [
        [],
        ["--all", "--function", "fn"],
        ["--all", "--provisioned", "3"],
        ["--all", "--cross-check"],
    ],
)
def test_all_and_function_options_exclude_each_other(arguments: list[str]) -> None:
    """--all with per-function options, or neither --all nor --function: a one-line error."""
    result = CliRunner().invoke(report_command, arguments)
    assert isinstance(result.exception, UserError)


def test_namespaced_query_uses_its_own_namespace() -> None:
    """Lambda's metric goes to AWS/Lambda even inside a call for the observer's namespace."""
    query = NamespacedQuery("c0", "ConcurrentExecutions", ((FUNCTION_NAME, "fn"),), "Maximum", 60)
    assert query.to_api("ConcurrencyObserver")["MetricStat"]["Metric"]["Namespace"] == "AWS/Lambda"
