"""Every function of a region, as the parts attaching and detaching plan from, chosen by name.

ListFunctions (paginated) returns each function's ``$LATEST`` configuration with its layers and
their sizes, its package type, code size and environment variables: enough to plan every
function without one more call each. The executor reads each function again right before
changing it (GetFunctionConfiguration, same shape), so a plan never acts on a stale listing.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from concurrency_observer.aws.session import aws_errors
from concurrency_observer.rollout.rollout_errors import redacted


@dataclass(frozen=True)
class LayerRef:
    """One layer of a function: its version ARN and zipped size (None when not reported)."""

    arn: str
    code_size: int | None = None

    @property
    def name(self) -> str:
        """The layer's name: ``arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION``."""
        parts = self.arn.split(":")
        return parts[6] if len(parts) >= 8 else self.arn

    @property
    def version(self) -> int | None:
        """The version number at the ARN's end, if it has one."""
        tail = self.arn.rsplit(":", 1)[-1]
        return int(tail) if tail.isdigit() else None


@dataclass(frozen=True)
class FleetFunction:
    """The parts of a function's configuration that attaching and detaching depend on."""

    name: str
    arn: str
    runtime: str | None
    package_type: str
    code_size: int
    layers: tuple[LayerRef, ...]
    variables: Mapping[str, str]
    environment_error: str | None
    revision_id: str | None
    # Lambda Managed Instances: the configuration has a CapacityProviderConfig.
    managed_instances: bool = False
    role: str | None = None  # the execution role's ARN

    @classmethod
    def from_configuration(cls, response: Mapping[str, Any]) -> FleetFunction:
        """Read a ListFunctions item or a GetFunctionConfiguration response."""
        environment = response.get("Environment") or {}
        error = environment.get("Error")
        return cls(
            name=str(response["FunctionName"]),
            arn=str(response["FunctionArn"]),
            runtime=response.get("Runtime"),
            package_type=str(response.get("PackageType", "Zip")),
            code_size=int(response.get("CodeSize") or 0),
            layers=tuple(
                LayerRef(str(layer["Arn"]), layer.get("CodeSize"))
                for layer in response.get("Layers") or ()
            ),
            variables=dict(environment.get("Variables") or {}),
            environment_error=_environment_error(error) if error else None,
            revision_id=response.get("RevisionId"),
            managed_instances=bool(response.get("CapacityProviderConfig")),
            role=response.get("Role"),
        )

    @property
    def layer_arns(self) -> tuple[str, ...]:
        """The layers' version ARNs, in order."""
        return tuple(layer.arn for layer in self.layers)


def _environment_error(error: Mapping[str, Any]) -> str:
    """``ErrorCode: message`` of an Environment that Lambda could not read, redacted."""
    code = str(error.get("ErrorCode") or "Error")
    message = redacted(str(error.get("Message") or ""))
    return f"{code}: {message}" if message else code


def list_functions(lambda_client: Any) -> list[FleetFunction]:
    """Every function of the client's region (``$LATEST`` of each), by name."""
    with aws_errors("ListFunctions"):
        pages = lambda_client.get_paginator("list_functions").paginate()
        items = [item for page in pages for item in page.get("Functions", ())]
    return sorted((FleetFunction.from_configuration(i) for i in items), key=lambda f: f.name)


def read_function(lambda_client: Any, name: str) -> FleetFunction:
    """GetFunctionConfiguration of one function's ``$LATEST``."""
    with aws_errors(f"GetFunctionConfiguration {name}"):
        response = lambda_client.get_function_configuration(FunctionName=name)
    return FleetFunction.from_configuration(response)


def selected(name: str, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> bool:
    """Whether a function name passes the globs: any ``include`` (all when none), no ``exclude``.

    Globs are shell-style (``orders-*``, ``*-prod``), matched case-sensitively, as names are.
    """
    if include and not any(fnmatch.fnmatchcase(name, glob) for glob in include):
        return False
    return not any(fnmatch.fnmatchcase(name, glob) for glob in exclude)


def select(
    functions: Iterable[FleetFunction], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[FleetFunction]:
    """The functions whose names pass the globs, in order."""
    return [f for f in functions if selected(f.name, include, exclude)]
