"""Options several commands share, spelled once so their names, defaults and help never drift."""

from __future__ import annotations

import click

from concurrency_observer.schema import DEFAULT_NAMESPACE

region = click.option("--region", help="AWS region (default: AWS_REGION or your AWS config).")

endpoint_url = click.option("--endpoint-url", help="CloudWatch endpoint, e.g. a local moto server.")

namespace = click.option(
    "--namespace",
    default=DEFAULT_NAMESPACE,
    envvar="CONCURRENCY_OBSERVER_NAMESPACE",
    show_default=True,
    help="The metrics' namespace (env: CONCURRENCY_OBSERVER_NAMESPACE, as the extension reads it).",
)
