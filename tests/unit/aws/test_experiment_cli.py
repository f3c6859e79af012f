"""``experiment`` end to end on stubbed Lambda and CloudWatch clients, with a manual clock."""

from __future__ import annotations

import importlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY, Stubber
from click.testing import CliRunner

from concurrency_observer.cli import cli
from concurrency_observer.study.clock import ManualClock
from tests.unit.aws.test_experiment import (
    ALIAS,
    FUNCTION,
    QUALIFIED,
    make_client,
    metric_response,
    queue_get,
    queue_put,
    usage_response,
)

# The package's ``experiment`` attribute is the click command; the module holds the seams.
experiment_cli = importlib.import_module("concurrency_observer.cli.experiment")
NOT_FOUND = "ProvisionedConcurrencyConfigNotFoundException"


def test_experiment_runs_restores_and_writes_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One level, one repeat: cost shown, level put and removed, 10 counted, outputs written."""
    lambda_client, cloudwatch_client = make_client("lambda"), make_client("cloudwatch")
    lambda_stub, cloudwatch_stub = Stubber(lambda_client), Stubber(cloudwatch_client)
    lambda_stub.add_response(
        "get_function_configuration",
        {"FunctionName": FUNCTION, "MemorySize": 1024, "Architectures": ["x86_64"]},
        QUALIFIED,
    )
    lambda_stub.add_response(
        "list_provisioned_concurrency_configs",
        {"ProvisionedConcurrencyConfigs": []},
        {"FunctionName": FUNCTION},
    )
    lambda_stub.add_client_error("get_provisioned_concurrency_config", NOT_FOUND, "none", 404)
    queue_put(lambda_stub, 5)
    queue_get(lambda_stub, "READY", 5, 5)
    for values in [(6,), (6, 4), (6, 4), (6, 4)]:  # 6, then 10 stable for the 60 s settle period
        cloudwatch_stub.add_response("get_metric_data", metric_response(*values))
    lambda_stub.add_response("delete_provisioned_concurrency_config", {}, QUALIFIED)
    # After the removal: all 10 seen shut down at once, 3 of them prompt and 1 delayed.
    logs_client = make_client("logs")
    logs_stub = Stubber(logs_client)
    for _ in range(2):  # the wait's read, then the figures' read
        cloudwatch_stub.add_response("get_metric_data", usage_response(10, 3, 1))
        # No environment records (the full profile's FirstInvoke series answer instead).
        logs_stub.add_response(
            "filter_log_events",
            {"events": [], "searchedLogStreams": []},
            {
                "logGroupName": f"/aws/lambda/{FUNCTION}",
                "startTime": ANY,
                "endTime": ANY,
                "filterPattern": '"concurrencyObserver"',
            },
        )
    lambda_stub.add_client_error("delete_provisioned_concurrency_config", NOT_FOUND, "none", 404)

    def clients(region: str, _endpoint_url: str | None) -> tuple[Any, Any]:
        assert region == "us-east-1"
        return lambda_client, cloudwatch_client

    monkeypatch.setattr(experiment_cli, "_clients", clients)
    monkeypatch.setattr(experiment_cli, "_logs_client", lambda *_: logs_client)
    clock = ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc))
    monkeypatch.setattr(experiment_cli, "_clock", lambda: clock)
    args = ["experiment", "--function", FUNCTION, "--alias", ALIAS, "--region", "us-east-1"]
    args += ["--levels", "5", "--repeats", "1", "--settle", "60", "--poll", "30", "--yes"]
    with lambda_stub, cloudwatch_stub, logs_stub:
        result = CliRunner().invoke(cli, [*args, "--output", str(tmp_path)])
        lambda_stub.assert_no_pending_responses()
        cloudwatch_stub.assert_no_pending_responses()
        logs_stub.assert_no_pending_responses()

    assert result.exit_code == 0, result.output
    # 5 × 1 GB × 300 s × $0.0000041667; worst: 5 × 1 GB × 2400 s (two 1200 s timeouts)
    assert "estimated cost: about $0.0063, at most $0.05" in result.output
    assert "no layers" in result.output
    assert "restored orders:live: no provisioned concurrency, as before" in result.output
    document = json.loads((tmp_path / "study.json").read_text())
    assert [(r["count"], r["shut_down"], r["ever_invoked"]) for r in document["repeats"]] == [
        (10, 10, 4)
    ]
    assert "10 of 10 shut down, 4 of them ever invoked" in result.output
    assert document["summary"][0]["ratio"] == 2.0
    assert (tmp_path / "study.png").exists()
