"""``concurrency-observer dashboard``: a CloudWatch dashboard for one function's environments."""

from __future__ import annotations

import click

from concurrency_observer.cli import options
from concurrency_observer.cli.report import check_function_name


@click.command(short_help="Create a CloudWatch dashboard of live environments.")
@click.option("--function", "function_name", required=True, help="The Lambda function's name.")
@click.option("--name", help="Dashboard name.  [default: concurrency-observer-<function>]")
@click.option(
    "--provisioned",
    type=click.IntRange(min=0),
    help="Draw the provisioned concurrency you asked for as a line on the live graph.",
)
@click.option(
    "--log-group",
    help="Where the Logs Insights widgets read the environment records.  [default: the "
    "function's LoggingConfig.LogGroup, else /aws/lambda/FUNCTION]",
)
@options.namespace
@options.region
@options.endpoint_url
def dashboard(
    *,
    function_name: str,
    name: str | None,
    provisioned: int | None,
    log_group: str | None,
    namespace: str,
    region: str | None,
    endpoint_url: str | None,
) -> None:
    """Create or replace a dashboard: live environments (metric math), inits, shutdowns, lifetimes.

    The metric widgets answer under the lean default and the full profile; shutdown reasons,
    never-invoked and proactive environments, lifetimes and per-environment figures also come
    from the environment records, through Logs Insights widgets (billed per GB scanned when
    viewed). Needs cloudwatch:PutDashboard (lambda:GetFunctionConfiguration to find a custom log
    group). Prints the dashboard's console URL.
    """
    from concurrency_observer.aws.dashboard import (  # noqa: PLC0415
        check_dashboard_name,
        console_url,
        dashboard_body,
        default_dashboard_name,
        put_dashboard,
    )
    from concurrency_observer.aws.session import client  # noqa: PLC0415

    check_function_name(function_name)
    dashboard_name = check_dashboard_name(name or default_dashboard_name(function_name))
    cloudwatch = client("cloudwatch", region, endpoint_url)
    region_name = str(cloudwatch.meta.region_name)
    if log_group is None:
        from concurrency_observer.aws.records import function_log_group  # noqa: PLC0415

        log_group, why = function_log_group(client("lambda", region), function_name)
        if why:
            click.secho(f"note: {why}", err=True)
    body = dashboard_body(function_name, namespace, region_name, provisioned, log_group)
    for message in put_dashboard(cloudwatch, dashboard_name, body):
        click.secho(f"warning: CloudWatch says: {message}", fg="yellow", err=True)
    click.echo(f"dashboard {dashboard_name}: {console_url(region_name, dashboard_name)}")
