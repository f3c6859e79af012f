"""Options several commands share, spelled once so their names, defaults and help never drift."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from concurrency_observer.schema import DEFAULT_NAMESPACE

_F = TypeVar("_F", bound=Callable[..., Any])

# The variable the extension reads its namespace from (extension/config.py), read here too.
NAMESPACE_VARIABLE = "CONCURRENCY_OBSERVER_NAMESPACE"

region = click.option("--region", help="AWS region (default: AWS_REGION or your AWS config).")

endpoint_url = click.option("--endpoint-url", help="CloudWatch endpoint, e.g. a local moto server.")


def namespace_option(
    default: str | None = DEFAULT_NAMESPACE, default_help: str | None = None
) -> Callable[[_F], _F]:
    """``--namespace`` (env ``CONCURRENCY_OBSERVER_NAMESPACE``), with ``default`` when neither is
    given; ``default=None`` lets the command choose, as ``default_help`` then says."""
    shown = f" [default: {default_help}]" if default_help else ""
    return click.option(
        "--namespace",
        default=default,
        envvar=NAMESPACE_VARIABLE,
        show_default=default is not None,
        help=f"The metrics' namespace (env: {NAMESPACE_VARIABLE}, as the extension reads it)."
        + shown,
    )


namespace = namespace_option()
