"""``report`` under the lean default, read back from moto: EnvironmentDelta plus the records.

The same environments as test_report_moto.py, written the way the lean profile writes them: one
EnvironmentDelta datum (+1 at init, -1 at shutdown) under [FunctionName, InitType], and one record
line per environment that shut down, in the function's log group, stamped at its shutdown. Every
figure the full profile gave is expected again; lifetimes now exact.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from click.testing import CliRunner

from concurrency_observer import environment_record as rec
from concurrency_observer.aws.session import client
from concurrency_observer.cli.report import report as report_command
from concurrency_observer.figures.usage import nearest_rank
from concurrency_observer.schema import ENVIRONMENT_DELTA, FUNCTION_NAME, INIT_TYPE
from tests.unit.aws.test_report_moto import (
    ENVS,
    PERIOD,
    REGION,
    WINDOW,
    Env,
    aws_env,
    cloudwatch,
    expected_document,
)

__all__ = ["aws_env", "cloudwatch"]  # fixtures used by name


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _record(env: Env, index: int, function: str, t0: datetime) -> dict[str, Any]:
    assert env.shutdown_at is not None
    record: dict[str, Any] = {
        rec.MARKER_KEY: rec.VERSION,
        rec.FUNCTION_NAME: function,
        rec.FUNCTION_VERSION: env.version,
        rec.INIT_TYPE: env.init_type,
        rec.ENVIRONMENT_ID: f"{index:016x}",
        rec.ENGINE: rec.ENGINE_PYTHON,
        rec.METRICS_PROFILE: rec.PROFILE_LEAN,
        rec.INIT_TIME: _ms(t0 + timedelta(seconds=env.init_at)),
        rec.SHUTDOWN_TIME: _ms(t0 + timedelta(seconds=env.shutdown_at)),
        rec.SHUTDOWN_REASON: env.reason,
        rec.LIFETIME_MS: env.lifetime * 1000,
        rec.IDLE_MS: env.idle * 1000,
    }
    if env.invocations is not None:
        record[rec.INVOCATIONS] = env.invocations
        record[rec.FIRST_INVOKE] = env.first_invoke
    if env.time_to_first_invoke is not None:
        record[rec.TIME_TO_FIRST_INVOKE_MS] = env.time_to_first_invoke * 1000
    return record


def seed_lean(cloudwatch: Any, logs: Any, namespace: str, function: str, t0: datetime) -> None:
    """EnvironmentDelta per [FunctionName, InitType]; a record per shutdown in its own stream."""
    data = []
    group = f"/aws/lambda/{function}"
    logs.create_log_group(logGroupName=group)
    for index, env in enumerate(ENVS):
        dimensions = [
            {"Name": FUNCTION_NAME, "Value": function},
            {"Name": INIT_TYPE, "Value": env.init_type},
        ]
        moments = [(env.init_at, 1.0)]
        if env.shutdown_at is not None:
            moments.append((env.shutdown_at, -1.0))
        for offset, value in moments:
            data.append(
                {
                    "MetricName": ENVIRONMENT_DELTA,
                    "Dimensions": dimensions,
                    "Timestamp": t0 + timedelta(seconds=offset),
                    "Value": value,
                    "Unit": "Count",
                }
            )
        if env.shutdown_at is None:
            continue
        stream = f"{t0:%Y/%m/%d}/[{env.version}]{uuid.uuid4().hex}"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        line = json.dumps(_record(env, index, function, t0), separators=(",", ":"))
        stamp = _ms(t0 + timedelta(seconds=env.shutdown_at))
        events = [{"timestamp": stamp, "message": "END RequestId: x"}]
        events.append({"timestamp": stamp, "message": line})
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
    cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)


def test_every_figure_is_kept_under_the_lean_profile(cloudwatch: Any) -> None:
    """Inits, shutdowns by reason, live series, distributions, classes: as computed by hand;
    lifetime quantiles exact (nearest rank of every lifetime) and the bill stated."""
    suffix = uuid.uuid4().hex[:8]
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=40)
    namespace, function = f"Test/{suffix}", f"fn-{suffix}"
    seed_lean(cloudwatch, client("logs", REGION), namespace, function, start)
    args = [
        "--function", function, "--namespace", namespace, "--region", REGION,
        "--start", start.isoformat(), "--end", (start + WINDOW).isoformat(),
        "--lookback", "30m", "--period", str(PERIOD), "--format", "json", "--provisioned", "2",
    ]  # fmt: skip
    result = CliRunner().invoke(report_command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    expected = expected_document(ENVS, start, WINDOW)
    assert document["figures_source"] == "records"
    assert document["metric_profiles"] == ["lean"]
    assert document["inits"] == expected["inits"]
    assert document["shutdowns"] == expected["shutdowns"]
    totals = [(p["timestamp"], p["total"], p["by_init_type"]) for p in document["live"]["series"]]
    expected_totals = [
        (p["timestamp"], p["total"], p["by_init_type"]) for p in expected["live"]["series"]
    ]
    assert totals == expected_totals
    assert document["live"]["at_start"] == expected["live"]["at_start"]
    for key in (
        "lifetime_seconds",
        "idle_time_seconds",
        "time_to_first_invoke_seconds",
        "invocations_per_environment",
        "environments_by_init_type",
        "shares",
    ):
        assert document[key] == expected[key], key
    lifetimes = [
        e.lifetime for e in ENVS if e.shutdown_at is not None and 0 <= e.shutdown_at < 1800
    ]
    quantiles = document["lifetime_quantiles"]
    assert quantiles["source"] == "records"
    assert quantiles["p50"] == nearest_rank(lifetimes, 50)
    assert quantiles["p90"] == nearest_rank(lifetimes, 90)
    bill = document["observer_bill"]
    assert bill["metric_streams"] == 2  # EnvironmentDelta x (on-demand, provisioned)
    assert bill["metrics_usd_per_month"] == 0.6
    assert bill["records"] == len(lifetimes)
    assert bill["record_bytes"] > 300 * len(lifetimes)


def test_with_no_records_the_lean_metric_still_answers_inits(cloudwatch: Any) -> None:
    """``--no-records``: inits from the metric alone, no per-environment figure, and a note."""
    suffix = uuid.uuid4().hex[:8]
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=40)
    namespace, function = f"Test/{suffix}", f"fn-{suffix}"
    seed_lean(cloudwatch, client("logs", REGION), namespace, function, start)
    args = [
        "--function", function, "--namespace", namespace, "--region", REGION,
        "--start", start.isoformat(), "--end", (start + WINDOW).isoformat(),
        "--lookback", "30m", "--period", str(PERIOD), "--format", "json", "--no-records",
    ]  # fmt: skip
    result = CliRunner().invoke(report_command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    expected = expected_document(ENVS, start, WINDOW)
    assert document["figures_source"] == "metrics"
    assert document["inits"]["total"] == expected["inits"]["total"]
    assert document["lifetime_seconds"]["count"] == 0


def test_all_ranks_a_lean_function_with_its_records(cloudwatch: Any) -> None:
    """``report --all``: created and peak from EnvironmentDelta, the never-invoked share from the
    function's records (one FilterLogEvents scan), as ``report --function`` gives them."""
    suffix = uuid.uuid4().hex[:8]
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=40)
    namespace, function = f"Test/{suffix}", f"fn-{suffix}"
    seed_lean(cloudwatch, client("logs", REGION), namespace, function, start)
    window = [
        "--namespace", namespace, "--region", REGION, "--start", start.isoformat(),
        "--end", (start + WINDOW).isoformat(), "--lookback", "30m", "--period", str(PERIOD),
        "--format", "json",
    ]  # fmt: skip
    ranked = CliRunner().invoke(report_command, ["--all", *window], catch_exceptions=False)
    single = CliRunner().invoke(
        report_command, ["--function", function, *window], catch_exceptions=False
    )
    assert ranked.exit_code == 0, ranked.output
    (entry,) = json.loads(ranked.stdout)["functions"]
    document = json.loads(single.stdout)
    assert entry["function"] == function
    assert entry["created"] == document["inits"]["total"]
    assert entry["shut_down"] == document["shutdowns"]["total"]
    assert entry["never_invoked_share"] == document["shares"]["never_invoked"]
    assert entry["proactive_share"] == document["shares"]["proactive"]
    assert entry["never_invoked_share"] is not None


def test_records_denied_still_reports_from_the_metrics(cloudwatch: Any) -> None:
    """FilterLogEvents refused (AccessDenied): the metrics answer, and a note says why."""
    from botocore.stub import Stubber

    from concurrency_observer.aws.report import ReportRequest, read_report, resolve_window

    suffix = uuid.uuid4().hex[:8]
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=40)
    namespace, function = f"Test/{suffix}", f"fn-{suffix}"
    seed_lean(cloudwatch, client("logs", REGION), namespace, function, start)
    window = resolve_window(
        now=start + WINDOW, start=start, end=start + WINDOW, lookback=timedelta(minutes=30)
    )
    logs = client("logs", REGION)
    with Stubber(logs) as stub:
        stub.add_client_error("filter_log_events", service_error_code="AccessDeniedException")
        report = read_report(cloudwatch, ReportRequest(function, window, namespace), logs=logs)
    assert report.figures_source == "metrics"
    assert report.inits_total == expected_document(ENVS, start, WINDOW)["inits"]["total"]
    assert any("AccessDeniedException" in note for note in report.notes)
