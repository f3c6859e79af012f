"""``--provisioned auto``: Lambda's PC configuration through botocore's Stubber (moto has none)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner

from concurrency_observer.aws import session
from concurrency_observer.aws.provisioned import read_provisioned
from concurrency_observer.cli.report import report as report_command
from concurrency_observer.errors import AwsError, UserError

from .test_report_moto import (
    ENVS,
    PERIOD,
    REGION,
    WINDOW,
    Seeded,
    aws_env,
    cloudwatch,
    expected_document,
    seeded,
)

__all__ = ["aws_env", "cloudwatch", "seeded"]  # fixtures used by name

ARN = "arn:aws:lambda:us-east-1:123456789012:function:orders"


def _config(
    qualifier: str, requested: int, allocated: int, status: str = "READY"
) -> dict[str, Any]:
    """One entry of ListProvisionedConcurrencyConfigs, in the API's own shape."""
    return {
        "FunctionArn": f"{ARN}:{qualifier}",
        "RequestedProvisionedConcurrentExecutions": requested,
        "AvailableProvisionedConcurrentExecutions": allocated,
        "AllocatedProvisionedConcurrentExecutions": allocated,
        "Status": status,
        "LastModified": "2026-11-27T09:00:00.000+0000",
    }


@pytest.fixture
def lambda_client() -> Any:
    """A real botocore Lambda client, answered by the Stubber."""
    return boto3.client(
        "lambda", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def test_list_sums_every_qualifier_across_pages(lambda_client: Any) -> None:
    """Two pages (NextMarker) and two qualifiers: requested and allocated are summed."""
    stubber = Stubber(lambda_client)
    stubber.add_response(
        "list_provisioned_concurrency_configs",
        {
            "ProvisionedConcurrencyConfigs": [_config("live", 500, 320, "IN_PROGRESS")],
            "NextMarker": "m",
        },
        {"FunctionName": "orders"},
    )
    stubber.add_response(
        "list_provisioned_concurrency_configs",
        {"ProvisionedConcurrencyConfigs": [_config("7", 10, 10)]},
        {"FunctionName": "orders", "Marker": "m"},
    )
    with stubber:
        totals = read_provisioned(lambda_client, "orders")
    stubber.assert_no_pending_responses()
    assert (totals.requested, totals.allocated) == (510, 330)
    assert totals.describe() == (
        "7: 10 requested, 10 allocated (READY); live: 500 requested, 320 allocated (IN_PROGRESS)"
    )


def test_version_reads_its_qualifier(lambda_client: Any) -> None:
    """With a version: GetProvisionedConcurrencyConfig for that qualifier only."""
    stubber = Stubber(lambda_client)
    response = _config("3", 50, 50)
    del response["FunctionArn"]  # the Get response has no ARN
    stubber.add_response(
        "get_provisioned_concurrency_config", response, {"FunctionName": "orders", "Qualifier": "3"}
    )
    with stubber:
        totals = read_provisioned(lambda_client, "orders", "3")
    assert (totals.requested, totals.allocated) == (50, 50)


def test_version_without_config_is_one_line(lambda_client: Any) -> None:
    """ProvisionedConcurrencyConfigNotFoundException: a UserError pointing at aliases."""
    stubber = Stubber(lambda_client)
    stubber.add_client_error(
        "get_provisioned_concurrency_config",
        "ProvisionedConcurrencyConfigNotFoundException",
        "No Provisioned Concurrency Config found for this function",
        404,
    )
    with stubber, pytest.raises(UserError, match="version 4 has no provisioned concurrency"):
        read_provisioned(lambda_client, "orders", "4")


def test_access_denied_names_the_action(lambda_client: Any) -> None:
    """AccessDenied: an AwsError naming lambda:ListProvisionedConcurrencyConfigs."""
    stubber = Stubber(lambda_client)
    stubber.add_client_error(
        "list_provisioned_concurrency_configs", "AccessDeniedException", http_status_code=403
    )
    with stubber, pytest.raises(AwsError, match="lambda:ListProvisionedConcurrencyConfigs"):
        read_provisioned(lambda_client, "orders")


def test_cli_auto_fills_the_reconciliation(
    seeded: Seeded, lambda_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--provisioned auto``: requested and allocated from Lambda, the rest from moto's metrics."""
    stubber = Stubber(lambda_client)
    stubber.add_response(
        "list_provisioned_concurrency_configs",
        {"ProvisionedConcurrencyConfigs": [_config("live", 2, 1, "IN_PROGRESS")]},
        {"FunctionName": seeded.function},
    )
    real_client = session.client

    def client(service: str, region: str | None = None, endpoint_url: str | None = None) -> Any:
        return lambda_client if service == "lambda" else real_client(service, region, endpoint_url)

    monkeypatch.setattr(session, "client", client)
    args = [
        "--function", seeded.function, "--namespace", seeded.namespace, "--region", REGION,
        "--start", seeded.start.isoformat(), "--end", (seeded.start + WINDOW).isoformat(),
        "--lookback", "30m", "--period", str(PERIOD), "--provisioned", "auto", "--format", "json",
    ]  # fmt: skip
    with stubber:
        result = CliRunner().invoke(report_command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    expected = expected_document(ENVS, seeded.start, WINDOW)
    pc = document["provisioned_concurrency"]
    assert (pc["source"], pc["requested"], pc["allocated"]) == ("lambda-api", 2, 1)
    assert pc["peak_live"] == expected["pc_peak_live"]
    assert document["provisioned"] == {
        "requested": 2,
        "peak_ratio": expected["live"]["peak"] / 2,
    }
    assert any(
        "as configured now" in note and "live: 2 requested" in note for note in document["notes"]
    )


def test_provisioned_option_refuses_words() -> None:
    """``--provisioned lots``: a usage error before any AWS call."""
    result = CliRunner().invoke(report_command, ["--function", "fn", "--provisioned", "lots"])
    assert result.exit_code == 2
    assert "not a whole number or 'auto'" in result.output
