"""``report --provisioned auto``: the function's provisioned concurrency, requested and allocated.

- ``read_provisioned(lambda_client, function_name, version=None) -> ProvisionedTotals``:
  without a version, every configuration of the function (ListProvisionedConcurrencyConfigs,
  paginated), summed: the ``InitType=provisioned-concurrency`` series cover all versions and
  aliases too. With a version, that qualifier's configuration (GetProvisionedConcurrencyConfig).

The configuration is read *now*: if it changed during the report's window, the report's
requested and allocated figures are today's, and the report says so. IAM:
``lambda:ListProvisionedConcurrencyConfigs`` and ``lambda:GetProvisionedConcurrencyConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from concurrency_observer.aws.session import aws_errors, error_code
from concurrency_observer.errors import AwsError, UserError


@dataclass(frozen=True)
class ProvisionedConfig:
    """One qualifier's provisioned concurrency configuration, as Lambda reports it."""

    qualifier: str
    requested: int
    allocated: int
    available: int
    status: str


@dataclass(frozen=True)
class ProvisionedTotals:
    """Requested and allocated provisioned concurrency summed over ``configs``."""

    configs: tuple[ProvisionedConfig, ...]

    @property
    def requested(self) -> int:
        """The concurrency asked for, over every qualifier."""
        return sum(config.requested for config in self.configs)

    @property
    def allocated(self) -> int:
        """The concurrency Lambda has allocated so far, over every qualifier."""
        return sum(config.allocated for config in self.configs)

    def describe(self) -> str:
        """One line per qualifier, for a note: ``live: 500 requested, 500 allocated (READY)``."""
        return "; ".join(
            f"{c.qualifier}: {c.requested} requested, {c.allocated} allocated ({c.status})"
            for c in self.configs
        )


def _config(qualifier: str, raw: dict[str, Any]) -> ProvisionedConfig:
    return ProvisionedConfig(
        qualifier=qualifier,
        requested=int(raw.get("RequestedProvisionedConcurrentExecutions", 0)),
        allocated=int(raw.get("AllocatedProvisionedConcurrentExecutions", 0)),
        available=int(raw.get("AvailableProvisionedConcurrentExecutions", 0)),
        status=str(raw.get("Status", "UNKNOWN")),
    )


def read_provisioned(
    lambda_client: Any, function_name: str, version: str | None = None
) -> ProvisionedTotals:
    """The function's provisioned concurrency now; ``UserError`` when a version has none."""
    if version is not None:
        try:
            with aws_errors("lambda:GetProvisionedConcurrencyConfig"):
                raw = lambda_client.get_provisioned_concurrency_config(
                    FunctionName=function_name, Qualifier=version
                )
        except AwsError as error:
            if error_code(error) == "ProvisionedConcurrencyConfigNotFoundException":
                raise UserError(
                    f"{function_name} version {version} has no provisioned concurrency "
                    "configured (if it is on an alias, leave out --version, or give "
                    "--provisioned N)"
                ) from error
            raise
        return ProvisionedTotals((_config(version, raw),))
    configs: list[ProvisionedConfig] = []
    with aws_errors("lambda:ListProvisionedConcurrencyConfigs"):
        paginator = lambda_client.get_paginator("list_provisioned_concurrency_configs")
        for page in paginator.paginate(FunctionName=function_name):
            for raw in page.get("ProvisionedConcurrencyConfigs", []):
                # The qualifier (version or alias) is the last part of the qualified ARN.
                qualifier = str(raw.get("FunctionArn", "")).rsplit(":", 1)[-1]
                configs.append(_config(qualifier, raw))
    return ProvisionedTotals(tuple(sorted(configs, key=lambda c: c.qualifier)))
