"""The example SAM template and IAM policies: valid for cfn-lint, and in step with the code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from cfnlint.decode import cfn_yaml  # type: ignore[import-untyped]

from concurrency_observer.aws.publish import (
    ARCHITECTURES,
    SINK_VARIABLE,
    SINKS,
    FunctionConfig,
    compatible_runtimes,
    refusal,
)
from concurrency_observer.schema import DEFAULT_NAMESPACE

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TEMPLATE = EXAMPLES / "sam" / "template.yaml"
CFN_LINT = Path(sys.executable).with_name("cfn-lint")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    """The parsed example template."""
    # cfn-lint's own parser reads the short tags as their long forms (``!Ref x``: ``{Ref: x}``).
    loaded: dict[str, Any] = cfn_yaml.load(str(TEMPLATE))
    return loaded


def _resource(template: dict[str, Any], kind: str) -> dict[str, Any]:
    (found,) = [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]
    properties: dict[str, Any] = found
    return properties


def test_the_template_passes_cfn_lint() -> None:
    """cfn-lint (as installed in the venv) reports nothing, not even a warning."""
    result = subprocess.run(
        [str(CFN_LINT), "--format", "parseable", str(TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_cfn_lint_would_catch_a_broken_template(tmp_path: Path) -> None:
    """The lint test can fail: an unknown property on the layer is reported."""
    broken = tmp_path / "template.yaml"
    broken.write_text(
        TEMPLATE.read_text().replace("LicenseInfo: MIT-0", "LicenseInfo: MIT-0\n      Bogus: 1")
    )
    result = subprocess.run(
        [str(CFN_LINT), str(broken)], capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode != 0
    assert "Bogus" in result.stdout


def test_the_layer_matches_what_publish_declares(template: dict[str, Any]) -> None:
    """Exactly the runtimes ``layer publish`` lists, and both architectures."""
    layer = _resource(template, "AWS::Serverless::LayerVersion")
    model = botocore.session.get_session().get_service_model("lambda")
    assert tuple(layer["CompatibleRuntimes"]) == compatible_runtimes(
        model.shape_for("Runtime").enum
    )
    assert {"python3.10", "python3.13", "provided.al2023"} <= set(layer["CompatibleRuntimes"])
    assert tuple(layer["CompatibleArchitectures"]) == ARCHITECTURES


def test_the_function_is_one_publish_would_accept(template: dict[str, Any]) -> None:
    """Its runtime is in the layer's list, ``layer publish`` would accept it, it uses the layer."""
    function = _resource(template, "AWS::Serverless::Function")
    layer = _resource(template, "AWS::Serverless::LayerVersion")
    assert function["Runtime"] in layer["CompatibleRuntimes"]
    config = FunctionConfig.from_response(
        "example",
        {"FunctionName": "example", "FunctionArn": "arn", "Runtime": function["Runtime"]},
    )
    assert refusal(config) is None
    (layer_id,) = [k for k, r in template["Resources"].items() if r["Properties"] is layer]
    assert {"Ref": layer_id} in function["Layers"]
    assert function["Environment"]["Variables"][SINK_VARIABLE] == {"Ref": "Sink"}
    assert tuple(template["Parameters"]["Sink"]["AllowedValues"]) == SINKS


def test_the_alias_has_provisioned_concurrency(template: dict[str, Any]) -> None:
    """AutoPublishAlias with provisioned concurrency taken from the parameter."""
    function = _resource(template, "AWS::Serverless::Function")
    assert function["AutoPublishAlias"]
    concurrency = function["ProvisionedConcurrencyConfig"]["ProvisionedConcurrentExecutions"]
    assert concurrency == {"Ref": "ProvisionedConcurrency"}


def _put_metric_statements(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in statements if s.get("Action") == "cloudwatch:PutMetricData"]


def test_put_metric_data_is_limited_to_the_namespace(template: dict[str, Any]) -> None:
    """Template and policy JSON grant PutMetricData only in the schema's namespace."""
    function = _resource(template, "AWS::Serverless::Function")
    (in_template,) = _put_metric_statements(function["Policies"][0]["Statement"])
    condition = in_template["Condition"]["StringEquals"]["cloudwatch:namespace"]
    assert condition == {"Ref": "MetricNamespace"}
    assert template["Parameters"]["MetricNamespace"]["Default"] == DEFAULT_NAMESPACE

    policy = json.loads((EXAMPLES / "iam-policy.json").read_text())
    assert policy["Version"] == "2012-10-17"
    (in_json,) = _put_metric_statements(policy["Statement"])
    assert in_json["Effect"] == "Allow"
    assert in_json["Condition"]["StringEquals"]["cloudwatch:namespace"] == DEFAULT_NAMESPACE
    assert len(policy["Statement"]) == 1  # nothing beyond what the extension needs
