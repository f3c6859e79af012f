"""The CDK example: synthesized with aws-cdk-lib (jsii on the machine's Node.js), then checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from concurrency_observer.layer import build_layer
from concurrency_observer.rollout.observer_settings import METRICS_VARIABLE
from concurrency_observer.rollout.sink import SINK_VARIABLE
from concurrency_observer.schema import DEFAULT_NAMESPACE

APP = Path(__file__).resolve().parents[2] / "examples" / "cdk"
CFN_LINT = Path(sys.executable).with_name("cfn-lint")
# CDK puts a DependsOn on each function's role beside the GetAtt that already orders them;
# cfn-lint's W3005 calls it redundant. It is CDK's own output, harmless, and not ours to change.
CDK_OWN_WARNINGS = "W3005"


def synthesize(
    out: Path, layer_zip: Path, metrics: str = "lean", command: Sequence[str] = ()
) -> tuple[dict[str, Any], str]:
    """Run the example app as ``cdk synth`` does (CDK_OUTDIR, CDK_CONTEXT_JSON): its template and
    stderr. ``command`` runs instead of ``python app.py`` (in the app's directory)."""
    env = {
        **os.environ,
        "CDK_OUTDIR": str(out),
        "CDK_CONTEXT_JSON": json.dumps({"layerZip": str(layer_zip), "metrics": metrics}),
    }
    result = subprocess.run(
        list(command) or [sys.executable, "app.py"],
        cwd=APP,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    template: dict[str, Any] = json.loads((out / "ObservedStack.template.json").read_text())
    return template, result.stderr


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The example synthesized once, against the real layer zip: (template file, template)."""
    scratch = tmp_path_factory.mktemp("cdk")
    layer = build_layer(scratch / "layer.zip").path
    out = scratch / "cdk.out"
    return out / "ObservedStack.template.json", synthesize(out, layer)[0]


def problems(template: dict[str, Any]) -> list[str]:
    """What keeps a function in the template from being observed: layer, settings, permission."""
    resources = template["Resources"]
    (layer_id,) = [k for k, r in resources.items() if r["Type"] == "AWS::Lambda::LayerVersion"]
    granted = set()
    for resource in resources.values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            condition = statement.get("Condition", {}).get("StringEquals", {})
            if (
                statement.get("Action") == "cloudwatch:PutMetricData"
                and condition.get("cloudwatch:namespace") == DEFAULT_NAMESPACE
            ):
                granted |= {role["Ref"] for role in resource["Properties"]["Roles"]}
    found = []
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        properties = resource["Properties"]
        if {"Ref": layer_id} not in properties.get("Layers", []):
            found.append(f"{name}: no layer")
        variables = properties.get("Environment", {}).get("Variables", {})
        if not {SINK_VARIABLE, METRICS_VARIABLE} <= set(variables):
            found.append(f"{name}: no settings")
        if properties["Role"]["Fn::GetAtt"][0] not in granted:
            found.append(f"{name}: no PutMetricData")
    return found


def test_every_function_has_the_layer_the_settings_and_the_permission(
    synthesized: tuple[Path, dict[str, Any]],
) -> None:
    """Both functions, Python and Node.js, carry all three; the default profile is lean."""
    _path, template = synthesized
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == 2
    assert problems(template) == []
    for function in functions:
        assert function["Properties"]["Environment"]["Variables"][METRICS_VARIABLE] == "lean"


def test_the_check_catches_a_function_left_out(
    synthesized: tuple[Path, dict[str, Any]],
) -> None:
    """The same check on a template where one function lost its layer and its role's grant."""
    _path, template = synthesized
    broken = json.loads(json.dumps(template))
    name, function = next(
        (k, r) for k, r in broken["Resources"].items() if r["Type"] == "AWS::Lambda::Function"
    )
    function["Properties"]["Layers"] = []
    function["Properties"]["Role"]["Fn::GetAtt"][0] = "SomeOtherRole"
    assert problems(broken) == [f"{name}: no layer", f"{name}: no PutMetricData"]


def test_the_synthesized_template_passes_cfn_lint(
    synthesized: tuple[Path, dict[str, Any]],
) -> None:
    """cfn-lint reports nothing but CDK's own redundant-DependsOn warning."""
    path, _template = synthesized
    result = subprocess.run(
        [str(CFN_LINT), "--format", "parseable", str(path), "--ignore-checks", CDK_OWN_WARNINGS],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
