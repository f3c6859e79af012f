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

from concurrency_observer.rollout.observer_settings import METRICS_VARIABLE
from concurrency_observer.rollout.publish import (
    ARCHITECTURES,
    FunctionConfig,
    compatible_runtimes,
    refusal,
)
from concurrency_observer.rollout.sink import SINK_VARIABLE, SINKS
from concurrency_observer.schema import (
    DEFAULT_METRICS_PROFILE,
    DEFAULT_NAMESPACE,
    METRICS_PROFILES,
)

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


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        key: resource["Properties"]
        for key, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


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
    """Its runtime is in the layer's list, and ``layer publish`` would accept it."""
    function = _functions(template)["ObservedFunction"]
    layer = _resource(template, "AWS::Serverless::LayerVersion")
    assert function["Runtime"] in layer["CompatibleRuntimes"]
    config = FunctionConfig.from_response(
        "example",
        {"FunctionName": "example", "FunctionArn": "arn", "Runtime": function["Runtime"]},
    )
    assert refusal(config) is None


def test_every_function_gets_the_layer_and_the_settings_from_globals(
    template: dict[str, Any],
) -> None:
    """Globals carry the layer and the three settings; no function drops or overrides them."""
    (layer_id,) = [
        k for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::LayerVersion"
    ]
    globals_ = template["Globals"]["Function"]
    assert globals_["Layers"] == [{"Ref": layer_id}]
    variables = globals_["Environment"]["Variables"]
    assert variables[SINK_VARIABLE] == {"Ref": "Sink"}
    assert variables[METRICS_VARIABLE] == {"Ref": "MetricsProfile"}
    assert variables["CONCURRENCY_OBSERVER_NAMESPACE"] == {"Ref": "MetricNamespace"}
    assert tuple(template["Parameters"]["Sink"]["AllowedValues"]) == SINKS
    profile = template["Parameters"]["MetricsProfile"]
    assert tuple(profile["AllowedValues"]) == METRICS_PROFILES
    assert profile["Default"] == DEFAULT_METRICS_PROFILE
    functions = _functions(template)
    assert len(functions) >= 2
    for name, function in functions.items():
        assert "Layers" not in function, name
        own = function.get("Environment", {}).get("Variables", {})
        assert not set(own) & set(variables), name


def test_every_function_has_the_permission(template: dict[str, Any]) -> None:
    """SAM's Globals take no Policies, so each function lists the one managed policy."""
    for name, function in _functions(template).items():
        assert {"Ref": "ObserverMetricsPolicy"} in function["Policies"], name


def test_the_alias_has_provisioned_concurrency(template: dict[str, Any]) -> None:
    """AutoPublishAlias with provisioned concurrency taken from the parameter."""
    function = _functions(template)["ObservedFunction"]
    assert function["AutoPublishAlias"]
    concurrency = function["ProvisionedConcurrencyConfig"]["ProvisionedConcurrentExecutions"]
    assert concurrency == {"Ref": "ProvisionedConcurrency"}


def _put_metric_statements(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in statements if s.get("Action") == "cloudwatch:PutMetricData"]


def test_put_metric_data_is_limited_to_the_namespace(template: dict[str, Any]) -> None:
    """Template and policy JSON grant PutMetricData only in the schema's namespace."""
    policy_resource = template["Resources"]["ObserverMetricsPolicy"]["Properties"]
    (in_template,) = _put_metric_statements(policy_resource["PolicyDocument"]["Statement"])
    condition = in_template["Condition"]["StringEquals"]["cloudwatch:namespace"]
    assert condition == {"Ref": "MetricNamespace"}
    assert template["Parameters"]["MetricNamespace"]["Default"] == DEFAULT_NAMESPACE

    policy = json.loads((EXAMPLES / "iam-policy.json").read_text())
    assert policy["Version"] == "2012-10-17"
    (in_json,) = _put_metric_statements(policy["Statement"])
    assert in_json["Effect"] == "Allow"
    assert in_json["Condition"]["StringEquals"]["cloudwatch:namespace"] == DEFAULT_NAMESPACE
    assert len(policy["Statement"]) == 1  # nothing beyond what the extension needs
