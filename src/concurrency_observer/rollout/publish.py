"""Publish the layer and attach it to functions, as a plan (data) that is printed or applied.

``plan_publish`` only reads (ListLayerVersions, GetFunctionConfiguration) and refuses, before
anything changes, every function the layer cannot be attached to (a container image, a version
other than $LATEST, unreadable variables, no room for one more layer, variables that would pass
Lambda's 4 KB once ours are set). Every runtime is served:
Python 3.10+ by the extension, any other by the layer's bash fallback (docs/runtimes.md).
``render_plan`` turns the plan into the diff-like lines ``--dry-run`` prints; ``apply_plan``
publishes the layer version and updates each function in turn, waiting for each update to finish.
The Lambda client is injected, so tests hand in a moto-backed one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from concurrency_observer import __version__
from concurrency_observer.aws.session import aws_errors
from concurrency_observer.errors import AwsError, UserError
from concurrency_observer.layer import EXTENSION_NAME
from concurrency_observer.rollout.fleet_functions import FleetFunction
from concurrency_observer.rollout.observer_settings import BadRecord, Settings, with_settings
from concurrency_observer.rollout.rollout_errors import (
    redacted,
    redacted_errors,
    secret_values,
    variables_over_limit,
)
from concurrency_observer.rollout.sink import MIN_PYTHON, SINK_VARIABLE, Sink, uses_fallback

DEFAULT_LAYER_NAME: Final = EXTENSION_NAME
LICENSE_INFO: Final = "MIT-0"
DESCRIPTION: Final = (
    f"concurrency-observer {__version__}: Lambda extension counting execution environments"
)
# The code is pure Python and bash, so one zip serves both architectures.
ARCHITECTURES: Final = ("x86_64", "arm64")
# Lambda's limit on layers per function.
MAX_LAYERS: Final = 5
# PublishLayerVersion takes at most this many compatible runtimes.
MAX_COMPATIBLE_RUNTIMES: Final = 15
# CompatibleRuntimes is metadata (the console's and ListLayers' filter), not a check: the layer runs
# on any runtime. The 15 slots, per family, newest versions of the installed botocore's model first
# (docs/aws.md says which and why): Python 3.10+ gets the full extension, the others the fallback.
RUNTIME_FAMILIES: Final[tuple[tuple[str, int], ...]] = (
    (r"python3\.(\d+)", 6),
    (r"nodejs(\d+)\.x", 3),
    (r"java(\d+)", 2),
    (r"dotnet(\d+)", 1),
    (r"ruby(\d+)\.(\d+)", 2),
    (r"provided\.al(2023)", 1),
)

_LAYER_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_LATEST: Final = "$LATEST"

# How long to wait for a function's configuration update to finish, and how often to look.
UPDATE_TIMEOUT_SECONDS: Final = 300.0
UPDATE_POLL_SECONDS: Final = 2.0


class AttachRefused(UserError):
    """One or more functions cannot take the layer; nothing was changed."""


def compatible_runtimes(runtime_enum: Iterable[str]) -> tuple[str, ...]:
    """The runtimes to list, by ``RUNTIME_FAMILIES``: each family's newest, oldest first in it.

    ``runtime_enum`` is the ``Runtime`` enum of the installed botocore's Lambda model, so the
    list follows the installed botocore; Python below 3.10 is left out (it gets the fallback, but
    the fallback's runtimes are listed by their own families).
    """
    names = tuple(runtime_enum)
    chosen: list[str] = []
    for pattern, quota in RUNTIME_FAMILIES:
        family = re.compile(pattern)
        versions = sorted(
            (tuple(int(part) for part in match.groups()), name)
            for name in names
            if (match := family.fullmatch(name)) is not None
        )
        if pattern.startswith("python"):
            versions = [(v, n) for v, n in versions if (3, *v) >= MIN_PYTHON]
        chosen += [name for _version, name in versions[-quota:]]
    return tuple(chosen[:MAX_COMPATIBLE_RUNTIMES])


def runtime_enum_of(lambda_client: Any) -> tuple[str, ...]:
    """The ``Runtime`` enum of the client's service model."""
    return tuple(lambda_client.meta.service_model.shape_for("Runtime").enum)


@dataclass(frozen=True)
class LayerSpec:
    """What PublishLayerVersion is given, besides the zip."""

    name: str = DEFAULT_LAYER_NAME
    description: str = DESCRIPTION
    license_info: str = LICENSE_INFO
    runtimes: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ARCHITECTURES

    def publish_arguments(self, content: bytes) -> dict[str, Any]:
        """Keyword arguments for ``publish_layer_version``."""
        return {
            "LayerName": self.name,
            "Description": self.description,
            "Content": {"ZipFile": content},
            "CompatibleRuntimes": list(self.runtimes),
            "CompatibleArchitectures": list(self.architectures),
            "LicenseInfo": self.license_info,
        }


def layer_spec(lambda_client: Any, name: str = DEFAULT_LAYER_NAME) -> LayerSpec:
    """The layer's metadata for this client's Lambda model; a bad name is a UserError."""
    if not _LAYER_NAME.fullmatch(name):
        raise UserError(f"bad layer name {name!r}: use 1-64 letters, digits, '-' or '_'")
    return LayerSpec(name=name, runtimes=compatible_runtimes(runtime_enum_of(lambda_client)))


def unversioned(layer_version_arn: str) -> str:
    """``arn:...:layer:name`` for ``arn:...:layer:name:7``."""
    return layer_version_arn.rsplit(":", 1)[0]


@dataclass(frozen=True)
class FunctionConfig:
    """The parts of GetFunctionConfiguration that attaching depends on."""

    requested: str  # the name or ARN the user gave
    name: str
    arn: str
    version: str
    runtime: str | None
    package_type: str
    layers: tuple[str, ...]
    variables: Mapping[str, str]
    environment_error: str | None
    revision_id: str | None
    # Lambda Managed Instances: GetFunctionConfiguration reports a CapacityProviderConfig.
    managed_instances: bool = False
    role: str | None = None  # the execution role's ARN

    @classmethod
    def from_response(cls, requested: str, response: Mapping[str, Any]) -> FunctionConfig:
        """Read a GetFunctionConfiguration response: parsed as the fleet commands parse it."""
        parsed = FleetFunction.from_configuration(response)
        return cls(
            requested=requested,
            name=parsed.name,
            arn=parsed.arn,
            version=str(response.get("Version", _LATEST)),
            runtime=parsed.runtime,
            package_type=parsed.package_type,
            layers=parsed.layer_arns,
            variables=parsed.variables,
            environment_error=parsed.environment_error,
            revision_id=parsed.revision_id,
            managed_instances=parsed.managed_instances,
            role=parsed.role,
        )


def refusal(config: FunctionConfig) -> str | None:
    """Why the layer cannot be attached to this function as it is, or None if it can."""
    if config.version != _LATEST:
        return (
            f"'{config.requested}' names version {config.version}; layers are set on $LATEST "
            "(give the bare function name, then publish a version)"
        )
    if config.package_type == "Image":
        return "a container image function takes no layers; copy the layer into the image instead"
    if config.environment_error:
        return (
            f"its environment variables cannot be read ({config.environment_error}), "
            "so they could not be kept"
        )
    return None


FALLBACK_RECORDS: Final = (
    "has no python3 3.10+, so the layer's bash engine runs: it records init and shutdown "
    "(reason, lifetime), invocations, time to first invoke, the FirstInvoke class and the idle "
    "time since the last invoke, but not the Telemetry API's account, as EMF lines in the "
    "function's log whatever the sink (CloudWatch Logs extracts them; no IAM needed)"
)
MANAGED_INSTANCES_RECORDS: Final = (
    "Lambda Managed Instances: extensions get SHUTDOWN only, so invocations, time to first "
    "invoke, the FirstInvoke class and the idle time since the last invocation come from the "
    "Telemetry API into each environment's record (none under CONCURRENCY_OBSERVER_TELEMETRY=off); "
    "unqualified invokes run $LATEST.PUBLISHED, so publish it "
    "to put the layer to use: aws lambda publish-version --function-name {name} "
    "--publish-to LATEST_PUBLISHED"
)


def what_is_recorded(config: FunctionConfig) -> list[str]:
    """One line per way this function's records differ from the full set (docs/runtimes.md)."""
    lines = []
    if uses_fallback(config.runtime):
        lines.append(f"runtime {config.runtime} {FALLBACK_RECORDS}")
    if config.managed_instances:
        lines.append(MANAGED_INSTANCES_RECORDS.format(name=config.name))
    return lines


@dataclass(frozen=True)
class Attachment:
    """What attaching the layer changes on one function."""

    function: FunctionConfig
    replaced: tuple[str, ...]  # older versions of our layer the new one takes the place of
    variables_set: Mapping[str, str]  # our variables whose value changes or is new

    def layers_after(self, version_arn: str) -> tuple[str, ...]:
        """The function's layers once ``version_arn`` is attached: the others kept, in order.

        The new version takes the place of the first older version of this layer (its position
        decides which layer's files win on a clash), or goes last.
        """
        layers: list[str] = []
        for arn in self.function.layers:
            if arn not in self.replaced:
                layers.append(arn)
            elif version_arn not in layers:
                layers.append(version_arn)
        if version_arn not in layers:
            layers.append(version_arn)
        return tuple(layers)

    def variables_after(self) -> dict[str, str]:
        """The function's environment variables with ours set."""
        return {**self.function.variables, **self.variables_set}

    def update_arguments(self, version_arn: str, revision_id: str | None) -> dict[str, Any]:
        """Keyword arguments for ``update_function_configuration``: layers and variables at once.

        With ``revision_id``, Lambda refuses the update if the function changed since that read,
        so a concurrent edit of its variables is reported instead of silently overwritten.
        """
        arguments: dict[str, Any] = {
            "FunctionName": self.function.arn,
            "Layers": list(self.layers_after(version_arn)),
            "Environment": {"Variables": self.variables_after()},
        }
        if revision_id:
            arguments["RevisionId"] = revision_id
        return arguments

    def still_holds(self, current: FunctionConfig) -> bool:
        """Whether what the plan was built from (runtime, layers, variables) is unchanged."""
        planned = self.function
        return (current.runtime, current.layers, current.variables) == (
            planned.runtime,
            planned.layers,
            planned.variables,
        )


def plan_attachment(
    function: FunctionConfig,
    layer_arn: str | None,
    sink: Sink | None,
    metrics: str | None = None,
) -> Attachment:
    """The change for one function; ``layer_arn`` is our layer's unversioned ARN, if it exists.

    The settings (sink, metric profile) and the record that lets ``layer detach`` take them back
    are observer_settings'; where the fallback runs, the default sink is ``emf``: what it writes
    whatever the variable says. A record that cannot be read raises BadRecord.
    """

    replaced = tuple(
        arn for arn in function.layers if layer_arn is not None and unversioned(arn) == layer_arn
    )
    wanted = Settings(sink, metrics).wanted(function.runtime, function.variables)
    after, _record = with_settings(function.variables, wanted)
    changed = {k: v for k, v in after.items() if function.variables.get(k) != v}
    return Attachment(function, replaced, changed)


@dataclass(frozen=True)
class PublishPlan:
    """Everything ``layer publish`` would do: one new layer version, then each attachment."""

    layer: LayerSpec
    content_size: int
    layer_arn: str | None  # unversioned; None until the layer's first version exists
    latest_version: int | None
    attachments: tuple[Attachment, ...] = field(default=())

    @property
    def next_version_arn(self) -> str:
        """The ARN the new version will most likely get (versions count up; shown by dry-run)."""
        if self.layer_arn is None:
            return f"{self.layer.name}:1"
        return f"{self.layer_arn}:{(self.latest_version or 0) + 1}"


def _latest_layer_version(lambda_client: Any, name: str) -> tuple[str | None, int | None]:
    with aws_errors(f"ListLayerVersions {name}"):
        pages = lambda_client.get_paginator("list_layer_versions").paginate(LayerName=name)
        versions = [item for page in pages for item in page.get("LayerVersions", ())]
    if not versions:
        return None, None
    latest = max(versions, key=lambda item: int(item["Version"]))
    return unversioned(str(latest["LayerVersionArn"])), int(latest["Version"])


def read_function(lambda_client: Any, requested: str) -> FunctionConfig:
    """GetFunctionConfiguration for a function name or ARN."""
    with aws_errors(f"GetFunctionConfiguration {requested}"):
        response = lambda_client.get_function_configuration(FunctionName=requested)
    return FunctionConfig.from_response(requested, response)


def plan_publish(
    lambda_client: Any,
    layer: LayerSpec,
    content_size: int,
    functions: Sequence[str] = (),
    sink: Sink | None = None,
    *,
    metrics: str | None = None,
) -> PublishPlan:
    """Read the layer and every function, and refuse (AttachRefused) before anything changes.

    A function given twice (by name and by ARN) is attached once.
    """
    layer_arn, latest = _latest_layer_version(lambda_client, layer.name)
    configs: dict[str, FunctionConfig] = {}
    for requested in functions:
        config = read_function(lambda_client, requested)
        configs.setdefault(config.arn, config)

    try:
        attachments = tuple(plan_attachment(c, layer_arn, sink, metrics) for c in configs.values())
    except BadRecord as exc:
        raise AttachRefused(f"not attaching the layer to any function; {exc}") from exc
    problems = [
        f"{a.function.name}: {reason}"
        for a in attachments
        if (reason := refusal(a.function) or _too_many_layers(a) or _too_large(a)) is not None
    ]
    if problems:
        raise AttachRefused("not attaching the layer to any function; " + "; ".join(problems))
    return PublishPlan(layer, content_size, layer_arn, latest, attachments)


def _too_large(attachment: Attachment) -> str | None:
    """Lambda's 4 KB limit on the variables once ours are set, checked before anything changes."""
    if not attachment.variables_set:
        return None
    return variables_over_limit(attachment.variables_after())


def _too_many_layers(attachment: Attachment) -> str | None:
    after = attachment.layers_after("<new>")
    if len(after) <= MAX_LAYERS:
        return None
    return (
        f"it already has {len(attachment.function.layers)} layers and Lambda allows "
        f"{MAX_LAYERS} per function; remove one first"
    )


def render_attachment(attachment: Attachment, version_arn: str) -> list[str]:
    """A diff-like summary of one function's change: ``-`` removed, ``+`` added, blank kept.

    Values of the function's other variables are never shown: they may be secrets.
    """
    function = attachment.function
    lines = [f"function {function.name} ({function.runtime}, {function.arn})", "  layers:"]
    after = attachment.layers_after(version_arn)
    for arn in function.layers:
        lines.append(f"      {arn}" if arn in after else f"    - {arn}")
    lines += [f"    + {arn}" for arn in after if arn not in function.layers]
    lines.append("  environment:")
    kept = sorted(set(function.variables) - set(attachment.variables_set))
    if kept:
        lines.append(f"      {len(kept)} other variable(s) kept: {', '.join(kept)}")
    for name, value in sorted(attachment.variables_set.items()):
        old = function.variables.get(name)
        lines.append(f"    + {name}={value}" if old is None else f"    ~ {name}: {old} -> {value}")
    if not attachment.variables_set:
        lines.append(f"      {SINK_VARIABLE} unchanged")
    lines += [f"  records: {line}" for line in what_is_recorded(function)]
    return lines


def render_plan(plan: PublishPlan) -> list[str]:
    """What ``--dry-run`` prints: the layer version to publish, then each function's diff."""
    layer = plan.layer
    lines = [
        f"would publish layer {layer.name} as {plan.next_version_arn} ({plan.content_size} bytes)",
        f"  runtimes: {', '.join(layer.runtimes)}",
        f"  architectures: {', '.join(layer.architectures)}; license: {layer.license_info}",
    ]
    for attachment in plan.attachments:
        lines += render_attachment(attachment, plan.next_version_arn)
    if not plan.attachments:
        lines.append("no function to attach it to (use --attach FUNCTION)")
    return lines


@dataclass(frozen=True)
class PublishResult:
    """What ``apply_plan`` did."""

    layer_version_arn: str
    version: int
    attached: tuple[str, ...]  # function names, in order


Sleep = Callable[[float], None]
Clock = Callable[[], float]


def wait_for_update(
    lambda_client: Any,
    function_arn: str,
    *,
    timeout: float = UPDATE_TIMEOUT_SECONDS,
    poll: float = UPDATE_POLL_SECONDS,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
) -> Mapping[str, Any]:
    """Wait until the function is not being created or updated; return its configuration.

    A second UpdateFunctionConfiguration while one is in progress fails with
    ResourceConflictException, so every update waits for the one before to finish.
    """
    deadline = clock() + timeout
    while True:
        with aws_errors(f"GetFunctionConfiguration {function_arn}"):
            config: Mapping[str, Any] = lambda_client.get_function_configuration(
                FunctionName=function_arn
            )
        busy = config.get("State") == "Pending" or config.get("LastUpdateStatus") == "InProgress"
        if not busy:
            return config
        if clock() >= deadline:
            raise AwsError(
                f"{config.get('FunctionName', function_arn)}: still updating after {timeout:.0f} s"
            )
        sleep(poll)


def apply_plan(
    lambda_client: Any,
    plan: PublishPlan,
    content: bytes,
    *,
    progress: Callable[[str], None] = lambda _line: None,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
) -> PublishResult:
    """Publish the layer version, then attach it to each function of the plan, one at a time.

    If an attachment fails, the error says which functions already have the new version.
    """
    with aws_errors(f"PublishLayerVersion {plan.layer.name}"):
        published = lambda_client.publish_layer_version(**plan.layer.publish_arguments(content))
    version_arn = str(published["LayerVersionArn"])
    progress(f"published {version_arn}")
    attached: list[str] = []
    for attachment in plan.attachments:
        name = attachment.function.name
        try:
            ready = wait_for_update(
                lambda_client, attachment.function.arn, sleep=sleep, clock=clock
            )
            # The revision may have moved on benignly (an update that was finishing); what
            # matters is that the runtime, layers and variables are still the ones planned on.
            current = FunctionConfig.from_response(attachment.function.requested, ready)
            if not attachment.still_holds(current):
                raise AwsError(f"{name} changed since it was read; run the command again")
            arguments = attachment.update_arguments(version_arn, current.revision_id)
            sent = arguments["Environment"]["Variables"]
            with redacted_errors(f"UpdateFunctionConfiguration {name}", sent):
                lambda_client.update_function_configuration(**arguments)
            final = wait_for_update(
                lambda_client, attachment.function.arn, sleep=sleep, clock=clock
            )
            if final.get("LastUpdateStatus") == "Failed":
                reason = redacted(
                    final.get("LastUpdateStatusReason") or "no reason given", secret_values(sent)
                )
                raise AwsError(f"updating {name} failed: {reason}")
        except AwsError as exc:
            done = ", ".join(attached) or "none"
            raise AwsError(f"{exc} (published {version_arn}; attached to: {done})") from exc
        attached.append(name)
        progress(f"attached to {name}")
    return PublishResult(version_arn, int(published["Version"]), tuple(attached))
