"""The Terraform example, parsed with python-hcl2 (no Terraform binary here: never validated)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import botocore.session
import hcl2
import pytest

from concurrency_observer.rollout.publish import compatible_runtimes
from concurrency_observer.rollout.sink import SINKS
from concurrency_observer.schema import DEFAULT_METRICS_PROFILE, METRICS_PROFILES

ROOT = Path(__file__).resolve().parents[2] / "examples" / "terraform"
MODULE = ROOT / "modules" / "concurrency-observer"
_VAR = re.compile(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)")


def load(directory: Path) -> dict[str, list[Any]]:
    """Every .tf file of a directory, as one configuration (blocks by type, in file order)."""
    merged: dict[str, list[Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        with path.open() as handle:
            for kind, blocks in hcl2.load(handle).items():
                merged.setdefault(kind, []).extend(blocks)
    return merged


def unquote(text: str) -> str:
    """python-hcl2 keeps a string literal's quotes (``"aws"``); drop them."""
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def blocks(config: dict[str, list[Any]], kind: str) -> dict[str, dict[str, Any]]:
    """``variable``, ``output``, ``module`` blocks by name."""
    return {unquote(k): v for block in config.get(kind, []) for k, v in block.items()}


def resources(config: dict[str, list[Any]], kind: str) -> dict[str, dict[str, Any]]:
    """Resources of one type by name."""
    found: dict[str, dict[str, Any]] = {}
    for block in config.get("resource", []):
        for type_, named in block.items():
            if unquote(type_) == kind:
                found |= {unquote(name): body for name, body in named.items()}
    return found


def variable_problems(config: dict[str, list[Any]]) -> list[str]:
    """Variables declared and never used, or used and never declared."""
    declared = set(blocks(config, "variable"))
    used = set(_VAR.findall(json.dumps({k: v for k, v in config.items() if k != "variable"})))
    # A variable's own validation uses it too, but that alone is not a use.
    return [f"unused: {n}" for n in sorted(declared - used)] + [
        f"undeclared: {n}" for n in sorted(used - declared)
    ]


def function_problems(root: dict[str, list[Any]]) -> list[str]:
    """Functions of the root that miss the module's layer, settings or PutMetricData grant."""
    (module_name,) = blocks(root, "module")
    module = blocks(root, "module")[module_name]
    granted = {re.sub(r"\.name}$", "", role) for role in module["role_names"]}
    found = []
    for name, function in resources(root, "aws_lambda_function").items():
        if f"${{module.{module_name}.layer_arn}}" not in function.get("layers", []):
            found.append(f"{name}: no layer")
        (environment,) = function.get("environment", [{}])
        if f"module.{module_name}.environment" not in str(environment.get("variables")):
            found.append(f"{name}: no settings")
        if re.sub(r"\.arn}$", "", function["role"]) not in granted:
            found.append(f"{name}: no PutMetricData")
    return found


@pytest.fixture(scope="module")
def root() -> dict[str, list[Any]]:
    """The example root module."""
    return load(ROOT)


@pytest.fixture(scope="module")
def module() -> dict[str, list[Any]]:
    """The concurrency-observer module."""
    return load(MODULE)


def test_every_function_gets_the_layer_the_settings_and_the_policy(
    root: dict[str, list[Any]],
) -> None:
    """Both example functions use the module's layer and settings, and their role is granted."""
    assert len(resources(root, "aws_lambda_function")) == 2
    assert function_problems(root) == []


def test_the_check_catches_a_function_left_out(root: dict[str, list[Any]]) -> None:
    """The same check fails for a function without the layer and on an ungranted role."""
    broken = json.loads(json.dumps(root))
    for block in broken["resource"]:
        for body in block.get('"aws_lambda_function"', {}).values():
            body["layers"] = []
            body["role"] = "${aws_iam_role.other.arn}"
    assert "python: no layer" in function_problems(broken)
    assert "node: no PutMetricData" in function_problems(broken)


@pytest.mark.parametrize("directory", [ROOT, MODULE], ids=["root", "module"])
def test_every_variable_is_declared_and_used(directory: Path) -> None:
    """No variable declared and unused, none used and undeclared, in the root and the module."""
    assert variable_problems(load(directory)) == []


def test_the_variable_check_can_fail(module: dict[str, list[Any]]) -> None:
    """A declared variable nobody uses is reported."""
    extra = json.loads(json.dumps(module))
    extra["variable"].append({'"spare"': {"type": "string"}})
    assert variable_problems(extra) == ["unused: spare"]


def test_the_module_call_matches_the_modules_variables(
    root: dict[str, list[Any]], module: dict[str, list[Any]]
) -> None:
    """Every input is a module variable; every variable without a default is given."""
    call = blocks(root, "module")["observer"]
    inputs = set(call) - {"source", "__is_block__"}
    variables = blocks(module, "variable")
    assert inputs <= set(variables)
    required = {n for n, v in variables.items() if "default" not in v}
    assert required <= inputs
    outputs = set(blocks(module, "output"))
    referenced = set(re.findall(r"module\.observer\.(\w+)", json.dumps(root)))
    assert referenced <= outputs


def test_the_module_publishes_the_layer_and_grants_in_the_namespace(
    module: dict[str, list[Any]],
) -> None:
    """The layer from var.layer_zip, our runtimes; the policy conditioned on var.namespace."""
    (layer,) = resources(module, "aws_lambda_layer_version").values()
    assert layer["filename"] == "${var.layer_zip}"
    variables = blocks(module, "variable")
    model = botocore.session.get_session().get_service_model("lambda")
    assert tuple(unquote(r) for r in variables["compatible_runtimes"]["default"]) == (
        compatible_runtimes(model.shape_for("Runtime").enum)
    )
    (policy,) = resources(module, "aws_iam_policy").values()
    assert "cloudwatch:PutMetricData" in policy["policy"]
    assert '"cloudwatch:namespace" = var.namespace' in policy["policy"]
    (attachment,) = resources(module, "aws_iam_role_policy_attachment").values()
    assert attachment["for_each"] == "${toset(var.role_names)}"
    assert unquote(variables["metrics"]["default"]) == DEFAULT_METRICS_PROFILE
    for name, allowed in (("sink", SINKS), ("metrics", METRICS_PROFILES)):
        (validation,) = variables[name]["validation"]
        assert all(f'\\"{value}\\"' in json.dumps(validation["condition"]) for value in allowed)
