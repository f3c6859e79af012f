"""Plan attaching the layer to a fleet: one ``Step`` per function, from its configuration alone.

``plan_attach`` decides, for one function: attach (ours goes last, the others keep their order),
upgrade (an older version of ours is replaced in place, or its settings change), unchanged (already
there with these settings: a second run changes nothing), or skip with the reason: a container
image, the 5-layer limit, the 250 MB unzipped limit, variables that cannot be read, variables that
would pass Lambda's 4 KB once ours are set (rollout_errors measures them as Lambda does).

The 250 MB limit is on the *unzipped* size of the function's code and all its layers. Lambda
reports only zipped sizes (the function's CodeSize, each layer's CodeSize), and a zip is never
much larger than what it holds, so their sum plus our layer's unzipped size is a lower bound:
above the limit, attaching would certainly fail and the function is skipped. Below it, the true
unzipped total is unknown (a 10 MB zip may hold 200 MB); Lambda then checks it at the update and
refuses with InvalidParameterValueException, which the summary shows as failed, with Lambda's
reason. A layer whose size cannot be read (another account's, without GetLayerVersion) counts as
zero, and the reason says so.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from concurrency_observer.aws.session import aws_errors
from concurrency_observer.rollout.fleet_functions import FleetFunction, LayerRef
from concurrency_observer.rollout.fleet_step import Step
from concurrency_observer.rollout.observer_settings import (
    BadRecord,
    Settings,
    with_settings,
)
from concurrency_observer.rollout.publish import (
    MAX_LAYERS,
    LayerSpec,
    PublishPlan,
    apply_plan,
    plan_publish,
)
from concurrency_observer.rollout.rollout_errors import variables_over_limit
from concurrency_observer.rollout.sink import uses_fallback

# Lambda's limit on a function's code and layers together, unzipped (250 MB as Lambda counts).
UNZIPPED_LIMIT_BYTES: Final = 262_144_000
_MB: Final = 1024 * 1024


@dataclass(frozen=True)
class Target:
    """What every function should end up with."""

    layer_name: str
    version_arn: str  # the layer version to attach (in a dry run: the one it would be)
    layer_unzipped_bytes: int
    settings: Settings = field(default_factory=Settings)


def unzipped_size(content: bytes) -> int:
    """The bytes a zip holds once extracted (what counts toward Lambda's 250 MB)."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return sum(info.file_size for info in archive.infolist())


def layers_with(layers: Iterable[LayerRef], layer_name: str, version_arn: str) -> tuple[str, ...]:
    """The layers once ``version_arn`` is on: ours in place of the first older one, or last.

    Position decides which layer's files win on a clash, so the others keep theirs; any further
    version of ours is dropped (a layer name listed twice).
    """
    after: list[str] = []
    for layer in layers:
        if layer.name != layer_name:
            after.append(layer.arn)
        elif version_arn not in after:
            after.append(version_arn)
    if version_arn not in after:
        after.append(version_arn)
    return tuple(after)


def _size_refusal(function: FleetFunction, target: Target) -> str | None:
    others = [layer for layer in function.layers if layer.name != target.layer_name]
    known = sum(layer.code_size or 0 for layer in others)
    unknown = sum(1 for layer in others if layer.code_size is None)
    lower = function.code_size + known + target.layer_unzipped_bytes
    if lower <= UNZIPPED_LIMIT_BYTES:
        return None
    note = f"; {unknown} layer size(s) unknown, counted as 0" if unknown else ""
    zipped = (function.code_size + known) / _MB
    ours = target.layer_unzipped_bytes / _MB
    return (
        f"250 MB unzipped limit: its code and layers are {zipped:.1f} MB zipped (so at least "
        f"that unzipped) and ours adds {ours:.1f} MB{note}"
    )


def refusal(function: FleetFunction, target: Target) -> str | None:
    """Why the layer cannot go on this function, or None."""
    if function.package_type == "Image":
        return "container image: it takes no layers (copy the layer's files into the image)"
    if function.environment_error:
        return (
            f"its variables cannot be read ({function.environment_error}), so they could not "
            "be kept"
        )
    if any(layer.name == target.layer_name for layer in function.layers):
        return None  # an upgrade in place: no new layer, no new size
    if len(function.layers) >= MAX_LAYERS:
        return f"already at Lambda's limit of {MAX_LAYERS} layers; remove one first"
    return _size_refusal(function, target)


def plan_attach(function: FleetFunction, target: Target) -> Step:
    """The plan for one function (pure: its configuration and the target in, a Step out)."""
    if reason := refusal(function, target):
        return Step(function, "skip", reason)
    try:
        wanted = target.settings.wanted(function.runtime, function.variables)
        variables, _record = with_settings(function.variables, wanted)
    except BadRecord as exc:
        return Step(function, "skip", f"{exc}; fix or remove it")
    layers = layers_with(function.layers, target.layer_name, target.version_arn)
    changed_settings = sorted(
        name.removeprefix("CONCURRENCY_OBSERVER_") + f"={variables[name]}"
        for name in wanted
        if function.variables.get(name) != variables[name]
    )
    if layers == function.layer_arns and not changed_settings:
        return Step(function, "unchanged", "already has this version and these settings")
    if changed_settings and (too_large := variables_over_limit(variables)):
        return Step(function, "skip", too_large)
    ours = [layer for layer in function.layers if layer.name == target.layer_name]
    version = target.version_arn.rsplit(":", 1)[-1]
    parts = []
    if not ours:
        position = layers.index(target.version_arn) + 1
        parts.append(f"layer {version} added as {position} of {len(layers)}")
    elif layers != function.layer_arns:
        old = ",".join(str(layer.version) for layer in ours)
        parts.append(f"layer {old} -> {version} in place")
    if changed_settings:
        parts.append("set " + ", ".join(changed_settings))
    if uses_fallback(function.runtime):
        parts.append(f"{function.runtime}: bash engine, no Telemetry API account")
    if function.managed_instances:
        parts.append("Managed Instances: in use once $LATEST.PUBLISHED is published")
    return Step(function, "upgrade" if ours else "attach", "; ".join(parts), layers, variables)


def fill_layer_sizes(lambda_client: Any, functions: Iterable[FleetFunction]) -> list[FleetFunction]:
    """The functions with each layer's CodeSize filled in from GetLayerVersion where it was absent.

    ListFunctions reports it for every layer on AWS; this covers an answer without it. A layer
    that cannot be read (another account's) keeps None. One call per distinct layer version.
    """
    cache: dict[str, int | None] = {}

    def size(layer: LayerRef) -> LayerRef:
        if layer.code_size is not None:
            return layer
        if layer.arn not in cache:
            cache[layer.arn] = _layer_version_size(lambda_client, layer)
        return LayerRef(layer.arn, cache[layer.arn])

    return [replace(f, layers=tuple(size(layer) for layer in f.layers)) for f in functions]


def _layer_version_size(lambda_client: Any, layer: LayerRef) -> int | None:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    if layer.version is None:
        return None
    try:
        response: Mapping[str, Any] = lambda_client.get_layer_version(
            LayerName=layer.arn.rsplit(":", 1)[0], VersionNumber=layer.version
        )
    except (ClientError, BotoCoreError):
        return None
    size = response.get("Content", {}).get("CodeSize")
    return int(size) if size is not None else None


def plan_fleet(functions: Iterable[FleetFunction], target: Target) -> list[Step]:
    """``plan_attach`` for every function, in order."""
    return [plan_attach(function, target) for function in functions]


@dataclass(frozen=True)
class LayerVersionChoice:
    """Which layer version attach-all puts on: the latest, if it holds these exact bytes, else new.

    Publishing only when the bytes differ is what makes a second run change nothing: the layer
    build is deterministic, so the same package gives the same zip and the same CodeSha256.
    """

    plan: PublishPlan
    reuse_arn: str | None

    @property
    def version_arn(self) -> str:
        """The version to attach (a new one's ARN is the one it will most likely get)."""
        return self.reuse_arn or self.plan.next_version_arn


def choose_layer_version(
    lambda_client: Any, layer: LayerSpec, content: bytes
) -> LayerVersionChoice:
    """Read the layer's latest version and compare its CodeSha256 with ``content``'s."""
    plan = plan_publish(lambda_client, layer, len(content))
    if plan.layer_arn is None or plan.latest_version is None:
        return LayerVersionChoice(plan, None)
    with aws_errors(f"GetLayerVersion {layer.name}:{plan.latest_version}"):
        latest = lambda_client.get_layer_version(
            LayerName=plan.layer_arn, VersionNumber=plan.latest_version
        )
    ours = base64.b64encode(hashlib.sha256(content).digest()).decode()
    same = latest.get("Content", {}).get("CodeSha256") == ours
    return LayerVersionChoice(plan, str(latest["LayerVersionArn"]) if same else None)


def ensure_layer_version(lambda_client: Any, choice: LayerVersionChoice, content: bytes) -> str:
    """The chosen version's ARN, publishing it first when it is new."""
    if choice.reuse_arn:
        return choice.reuse_arn
    return apply_plan(lambda_client, choice.plan, content).layer_version_arn
