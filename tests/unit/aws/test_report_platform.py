"""The report leads with the cold starts: records with the platform's account, by hand.

Window 12:00-12:10. Records (all shut down in the window unless said):

    a  on-demand    prompt   init 250 ms  success
    b  on-demand    prompt   init 350 ms  success
    c  on-demand    delayed  init 900 ms  success     (proactive)
    d  on-demand    never    init 120 ms  error Runtime.ExitError, phase init
    e  provisioned  never    init 800 ms  success
    f  managed      14 invocations, at most 4 at once, use1-az2
    g  on-demand    prompt   init 999 ms  shut down after the window: not counted

AWS/Lambda Invocations in the window: 200, so the share is 2 / 200 = 1%.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from click.testing import CliRunner
from rich.console import Console

from concurrency_observer import environment_record as rec
from concurrency_observer.aws.lambda_invocations import invocations_query, lambda_invocations
from concurrency_observer.aws.report import (
    FetchedMetrics,
    ReportRequest,
    ReportWindow,
    build_report,
)
from concurrency_observer.aws.session import client
from concurrency_observer.cli.report import report as report_command
from concurrency_observer.figures.record_scan import RecordScan
from concurrency_observer.reporting.structured import report_csv
from concurrency_observer.reporting.table import report_renderable
from tests.unit.aws.test_report_lean_moto import seed_lean
from tests.unit.aws.test_report_moto import PERIOD, REGION, aws_env, cloudwatch
from tests.unit.aws.test_report_moto import WINDOW as MOTO_WINDOW

__all__ = ["aws_env", "cloudwatch"]  # fixtures used by name

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
WINDOW = ReportWindow(
    start=T0, end=T0 + timedelta(minutes=10), period=60, lookback_start=T0 - timedelta(minutes=10)
)
NO_METRICS = FetchedMetrics(init_types=(), shutdown_reasons=(), series={})


def _record(name: str, init_type: str, **extra: Any) -> dict[str, Any]:
    """A record shut down at +120 s, or at ``shutdown_s``."""
    init = T0 + timedelta(seconds=10)
    shutdown = T0 + timedelta(seconds=extra.pop("shutdown_s", 120))
    return {
        rec.MARKER_KEY: rec.VERSION,
        rec.FUNCTION_NAME: "fn",
        rec.FUNCTION_VERSION: "$LATEST",
        rec.INIT_TYPE: init_type,
        rec.ENVIRONMENT_ID: name * 16,
        rec.ENGINE: rec.ENGINE_PYTHON,
        rec.METRICS_PROFILE: rec.PROFILE_LEAN,
        rec.INIT_TIME: int(init.timestamp() * 1000),
        rec.SHUTDOWN_TIME: int(shutdown.timestamp() * 1000),
        rec.SHUTDOWN_REASON: "spindown",
        rec.LIFETIME_MS: (shutdown - init).total_seconds() * 1000,
        rec.IDLE_MS: 0,
        **extra,
    }


OK: dict[str, Any] = {"initStatus": "success", "initPhase": "init"}
RECORDS = (
    _record("a", "on-demand", firstInvoke="prompt", initDurationMs=250, **OK),
    _record("b", "on-demand", firstInvoke="prompt", initDurationMs=350, **OK),
    _record("c", "on-demand", firstInvoke="delayed", initDurationMs=900, **OK),
    _record(
        "d",
        "on-demand",
        firstInvoke="never",
        initDurationMs=120,
        initStatus="error",
        initErrorType="Runtime.ExitError",
        initPhase="init",
    ),
    _record("e", "provisioned-concurrency", firstInvoke="never", initDurationMs=800, **OK),
    _record(
        "f",
        "lambda-managed-instances",
        invocations=14,
        maxConcurrentInvocations=4,
        firstInvoke="prompt",
        availabilityZoneId="use1-az2",
    ),
    _record("g", "on-demand", shutdown_s=3600, firstInvoke="prompt", initDurationMs=999, **OK),
)


def _report() -> Any:
    scan = RecordScan("/aws/lambda/fn", RECORDS)
    return build_report(ReportRequest("fn", WINDOW), NO_METRICS, scan, invocations=200)


def test_the_document_leads_with_cold_starts() -> None:
    """2 felt cold starts of 200 invocations; g (after the window) not counted."""
    document = _report().to_dict()
    assert document["cold_starts"] == {
        "felt": 2,
        "environments": 6,
        "classified": 6,
        "invocations": 200,
        "share": 0.01,
        "share_invocations": 200,
        "share_over": "AWS/Lambda Invocations",
        "init_duration_ms": {"count": 2, "p50": 250.0, "p90": 350.0, "p99": 350.0, "max": 350.0},
        "not_waited_for": {
            "proactive": 1,
            "provisioned": 1,
            "never-invoked": 1,
            "managed-instances": 1,
        },
    }
    platform = document["platform"]
    assert platform["environments"] == 6
    assert platform["failed_inits"] == {
        "total": 1,
        "by_error_type": {"Runtime.ExitError": 1},
        "by_phase": {"init": 1},
    }
    assert platform["init_duration_ms_by_init_type"]["on-demand"]["count"] == 4
    assert platform["managed_instances"] == [
        {
            "environment_id": "f" * 16,
            "invocations": 14,
            "max_concurrent_invocations": 4,
            "availability_zone_id": "use1-az2",
        }
    ]


def test_csv_carries_the_same_figures() -> None:
    """The CSV rows follow the JSON paths of the new sections."""
    rows = list(csv.reader(io.StringIO(report_csv(_report()))))
    cells = {(r[0], r[1]): r[3] for r in rows[1:]}
    assert cells[("cold_starts", "felt")] == "2"
    assert cells[("cold_starts", "share")] == "0.01"
    assert cells[("cold_starts", "init_duration_ms.p90")] == "350.0"
    assert cells[("cold_starts", "not_waited_for.proactive")] == "1"
    assert cells[("platform", "failed_inits.by_error_type.Runtime.ExitError")] == "1"
    assert cells[("platform", "managed_instances.0.max_concurrent_invocations")] == "4"
    assert cells[("platform", "environments_by_availability_zone.use1-az2")] == "1"


def test_the_table_leads_with_cold_starts() -> None:
    """The first table after the heading answers how many invocations were cold starts."""
    console = Console(width=160, record=True)
    console.print(report_renderable(_report()))
    text = console.export_text()
    assert text.index("How many invocations were cold starts") < text.index(
        "Execution environments"
    )
    assert "1.00%" in text
    assert "Failed inits: 1" in text
    assert "Lambda Managed Instances, per environment" in text


def test_without_records_no_platform_sections() -> None:
    """The metric path (no records): both sections null, nothing invented."""
    report = build_report(ReportRequest("fn", WINDOW), NO_METRICS, RecordScan("/aws/lambda/fn"))
    assert (report.to_dict()["cold_starts"], report.to_dict()["platform"]) == (None, None)


def test_invocations_query() -> None:
    """Sum of Invocations by FunctionName, and Resource for a version."""
    query = invocations_query(ReportRequest("fn", WINDOW, version="3"))
    assert (query.metric_name, query.stat, query.period) == ("Invocations", "Sum", 60)
    assert query.dimensions == (("FunctionName", "fn"), ("Resource", "fn:3"))


def test_lambda_invocations_from_cloudwatch(cloudwatch: Any) -> None:
    """Summed over the window's periods; none stored: unknown, not zero."""
    request = ReportRequest("fn", WINDOW)
    assert lambda_invocations(cloudwatch, request) is None
    for minute, count in ((1, 120.0), (4, 80.0)):
        cloudwatch.put_metric_data(
            Namespace="AWS/Lambda",
            MetricData=[
                {
                    "MetricName": "Invocations",
                    "Dimensions": [{"Name": "FunctionName", "Value": "fn"}],
                    "Timestamp": T0 + timedelta(minutes=minute),
                    "Value": count,
                    "Unit": "Count",
                }
            ],
        )
    assert lambda_invocations(cloudwatch, request) == 200.0


def test_the_cli_reads_lambda_invocations_for_the_share(cloudwatch: Any) -> None:
    """``report`` on moto: the lean metric, the records and AWS/Lambda Invocations (1000 in the
    window) give the felt cold starts (the on-demand environments invoked promptly) and their
    share, in the JSON document."""
    suffix = uuid.uuid4().hex[:8]
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=40)
    namespace, function = f"Test/{suffix}", f"fn-{suffix}"
    seed_lean(cloudwatch, client("logs", REGION), namespace, function, start)
    cloudwatch.put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "Invocations",
                "Dimensions": [{"Name": "FunctionName", "Value": function}],
                "Timestamp": start + timedelta(minutes=minute),
                "Value": 250.0,
                "Unit": "Count",
            }
            for minute in (1, 5, 12, 29)
        ],
    )
    args = [
        "--function", function, "--namespace", namespace, "--region", REGION,
        "--start", start.isoformat(), "--end", (start + MOTO_WINDOW).isoformat(),
        "--lookback", "30m", "--period", str(PERIOD), "--format", "json",
    ]  # fmt: skip
    result = CliRunner().invoke(report_command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    felt = document["environments_by_init_type"]["on-demand"]["invoked_promptly"]
    assert felt > 0
    cold = document["cold_starts"]
    assert (cold["felt"], cold["invocations"]) == (felt, 1000.0)
    # Some of these environments ran SHUTDOWN-only (no class): the share is over the classified
    # ones' own invocations, not AWS/Lambda's, which include the others'.
    assert 0 < cold["classified"] < cold["environments"]
    assert cold["share_over"] == "the classified environments' records"
    assert cold["share"] == round(felt / cold["share_invocations"], 6)
    assert cold["share_invocations"] < 1000
    assert cold["init_duration_ms"] is None  # these records carry no Telemetry fields
    assert document["platform"]["with_telemetry"] == 0
