"""The Serverless Framework snippet, parsed as YAML: the layer and the grant on every function."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from concurrency_observer.rollout.observer_settings import METRICS_VARIABLE
from concurrency_observer.rollout.sink import SINK_VARIABLE
from concurrency_observer.schema import DEFAULT_METRICS_PROFILE, DEFAULT_NAMESPACE

SNIPPET = Path(__file__).resolve().parents[2] / "examples" / "serverless" / "serverless.yml"
OUR_LAYER = {"Ref": "ConcurrencyObserverLambdaLayer"}  # the framework's name for layers.<name>


@pytest.fixture(scope="module")
def service() -> dict[str, Any]:
    """The parsed snippet."""
    loaded: dict[str, Any] = yaml.safe_load(SNIPPET.read_text())
    return loaded


def function_problems(service: dict[str, Any]) -> list[str]:
    """Functions that would run without our layer (a function's own ``layers`` replaces the
    provider's list) or without the provider's settings."""
    provider_layers = service["provider"].get("layers", [])
    found = []
    for name, function in service["functions"].items():
        layers = function.get("layers", provider_layers)
        if OUR_LAYER not in layers:
            found.append(f"{name}: no layer")
    return found


def test_every_function_has_the_layer(service: dict[str, Any]) -> None:
    """Through the provider's list; the layer is the one the snippet publishes."""
    assert len(service["functions"]) >= 2
    assert function_problems(service) == []
    (name,) = service["layers"]
    assert f"{name[0].upper()}{name[1:]}LambdaLayer" == OUR_LAYER["Ref"]
    assert service["layers"][name]["package"]["artifact"].endswith("concurrency-observer-layer.zip")


def test_a_function_with_its_own_layers_is_caught(service: dict[str, Any]) -> None:
    """Its own list replaces the provider's, so it must name ours: the check says so."""
    broken = {**service, "functions": {"x": {"handler": "h.x", "layers": ["arn:other:1"]}}}
    assert function_problems(broken) == ["x: no layer"]


def test_the_settings_and_the_grant(service: dict[str, Any]) -> None:
    """Provider-level settings (lean by default) and PutMetricData in the namespace only."""
    observer = service["custom"]["observer"]
    assert observer["metrics"] == DEFAULT_METRICS_PROFILE
    assert observer["namespace"] == DEFAULT_NAMESPACE
    environment = service["provider"]["environment"]
    assert environment[SINK_VARIABLE] == "${self:custom.observer.sink}"
    assert environment[METRICS_VARIABLE] == "${self:custom.observer.metrics}"
    (statement,) = service["provider"]["iam"]["role"]["statements"]
    assert statement["Action"] == "cloudwatch:PutMetricData"
    assert statement["Effect"] == "Allow"
    condition = statement["Condition"]["StringEquals"]["cloudwatch:namespace"]
    assert condition == "${self:custom.observer.namespace}"
    assert not any(
        "environment" in f and SINK_VARIABLE in f["environment"]
        for f in service["functions"].values()
    )
