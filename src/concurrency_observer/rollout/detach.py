"""Plan taking the layer off: exactly our layer (any version) and the settings attaching added.

Our layer is recognised by its name in the ARN (``...:layer:concurrency-observer:7``), whatever
the version, account or region. The settings come back as observer_settings describes: each
variable attaching set gets its earlier value back (or goes) while it still holds what attaching
set; the record variable goes; nothing else changes. A function attached before the record
existed (no record) loses the layer, and its variables are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterable

from concurrency_observer.rollout.fleet_functions import FleetFunction
from concurrency_observer.rollout.fleet_step import Step
from concurrency_observer.rollout.observer_settings import (
    RECORD_VARIABLE,
    BadRecord,
    without_settings,
)


def plan_detach(function: FleetFunction, layer_name: str) -> Step:
    """The plan for one function (pure)."""
    layers = tuple(layer.arn for layer in function.layers if layer.name != layer_name)
    try:
        variables, kept = without_settings(function.variables)
    except BadRecord as exc:
        return Step(function, "skip", f"{exc}; fix or remove it, then detach again")
    removed_layers = len(function.layers) - len(layers)
    if not removed_layers and variables == dict(function.variables):
        return Step(function, "unchanged", f"no {layer_name} layer and no settings of its")
    if function.environment_error and variables != dict(function.variables):
        return Step(
            function,
            "skip",
            f"its variables cannot be read ({function.environment_error}), so they could not "
            "be kept",
        )
    parts = []
    if removed_layers:
        versions = ",".join(
            str(layer.version) for layer in function.layers if layer.name == layer_name
        )
        parts.append(f"layer {versions} removed")
    restored = sorted(
        name.removeprefix("CONCURRENCY_OBSERVER_")
        for name in set(function.variables) | set(variables)
        if name != RECORD_VARIABLE and function.variables.get(name) != variables.get(name)
    )
    if restored:
        parts.append("settings taken back: " + ", ".join(restored))
    elif RECORD_VARIABLE not in function.variables:
        parts.append("no record of settings it added: variables left as they are")
    if kept:
        parts.append("changed since attaching, kept: " + ", ".join(kept))
    return Step(function, "detach", "; ".join(parts), layers, variables)


def plan_detach_all(functions: Iterable[FleetFunction], layer_name: str) -> list[Step]:
    """``plan_detach`` for every function, in order."""
    return [plan_detach(function, layer_name) for function in functions]
