"""``concurrency-observer report``: read the extension's metrics back and summarise them.

The click parameter types ``DURATION`` (``3h``, ``90m``, ``1h30m``, ``2d``) and ``TIMESTAMP``
(ISO 8601; naive means UTC) are reusable by other commands.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import click

from concurrency_observer.cli import options
from concurrency_observer.errors import UserError

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
# Lambda's rule for a function name (the FunctionName dimension is the name, never an ARN).
_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class DurationType(click.ParamType):  # type: ignore[type-arg]
    """A duration such as ``3h``, ``90m``, ``1h30m``, ``2d`` or ``45s``."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """A ``timedelta``; a one-line usage error otherwise."""
        if isinstance(value, timedelta):
            return value
        text = str(value).strip().lower()
        match = _DURATION.fullmatch(text)
        if not text or match is None:
            self.fail(f"{value!r} is not a duration like 3h, 90m, 1h30m or 2d", param, ctx)
        days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


class TimestampType(click.ParamType):  # type: ignore[type-arg]
    """An ISO 8601 date and time (``2026-11-27T17:00:00Z``, ``2026-11-27 17:00``); naive is UTC."""

    name = "timestamp"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """An aware UTC ``datetime``; a one-line usage error otherwise."""
        if isinstance(value, datetime):
            moment = value
        else:
            text = str(value).strip()
            # Python 3.10's fromisoformat does not read the "Z" suffix.
            text = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                self.fail(
                    f"{value!r} is not an ISO 8601 time like 2026-11-27T17:00:00Z", param, ctx
                )
        if moment.tzinfo is None:
            return moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc)


class ProvisionedType(click.ParamType):  # type: ignore[type-arg]
    """A provisioned concurrency: a whole number >= 0, or ``auto`` (read it from Lambda)."""

    name = "N|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """An ``int``, or the string ``auto``; a one-line usage error otherwise."""
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text.isascii() and text.isdigit():
            return int(text)
        if text != "auto":
            self.fail(f"{value!r} is not a whole number or 'auto'", param, ctx)
        return "auto"


DURATION = DurationType()
TIMESTAMP = TimestampType()
PROVISIONED = ProvisionedType()


def check_function_name(name: str) -> str:
    """``name`` if it is a Lambda function name, else a ``UserError`` saying what is expected."""
    if not _FUNCTION_NAME.fullmatch(name):
        raise UserError(
            f"invalid function name {name!r}: give the function's name (letters, digits, '-', "
            "'_', at most 64), not an ARN"
        )
    return name


@click.command(short_help="Inits, shutdowns and live environments of a function (or all).")
@click.option("--function", "function_name", help="The Lambda function's name.")
@click.option(
    "--all",
    "all_functions",
    is_flag=True,
    help="Rank every function in the namespace instead (ListMetrics + batched GetMetricData).",
)
@click.option(
    "--sort",
    "sort_key",
    type=click.Choice(["created", "never-invoked", "proactive", "peak", "over-provisioning"]),
    default="created",
    show_default=True,
    help="With --all: the figure to rank by, largest first.",
)
@click.option(
    "--version",
    "function_version",
    help="Only this version ($LATEST, 1, 2...); breakdowns by type still cover all versions.",
)
@click.option("--since", type=DURATION, help="Window ending now (or at --end).  [default: 3h]")
@click.option("--start", type=TIMESTAMP, help="Window start (ISO 8601, UTC if no offset).")
@click.option("--end", type=TIMESTAMP, help="Window end (ISO 8601).  [default: now]")
@click.option(
    "--period",
    type=int,
    default=60,
    show_default=True,
    help="Seconds per point: a multiple of 60, or 1/5/10/20/30 for the last 3 hours.",
)
@click.option(
    "--lookback",
    type=DURATION,
    default="6h",
    show_default=True,
    help="How far before the start to count environments still alive at the start.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="A table to read, or JSON/CSV on stdout for scripts (warnings go to stderr).",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a PNG chart of live environments.",
)
@click.option(
    "--provisioned",
    type=PROVISIONED,
    help="The provisioned concurrency you asked for, or 'auto' to read it (and what is "
    "allocated) from the function's configuration now.",
)
@click.option(
    "--cross-check",
    is_flag=True,
    help="Also count INIT_START lines (Logs Insights) and log streams created in the window.",
)
@click.option(
    "--log-group",
    help="The function's log group, where the environment records are read (and --cross-check "
    "counts).  [default: the function's LoggingConfig.LogGroup, else /aws/lambda/FUNCTION]",
)
@click.option(
    "--no-records",
    is_flag=True,
    help="Read the metrics only (no logs:FilterLogEvents): inits, shutdowns and the live series "
    "under the lean profile; every figure under full, approximated as before the records.",
)
@options.namespace
@options.region
@options.endpoint_url
def report(
    *,
    function_name: str | None,
    all_functions: bool,
    sort_key: str,
    function_version: str | None,
    since: timedelta | None,
    start: datetime | None,
    end: datetime | None,
    period: int,
    lookback: timedelta,
    output_format: str,
    plot: Path | None,
    provisioned: int | str | None,
    cross_check: bool,
    log_group: str | None,
    no_records: bool,
    namespace: str,
    region: str | None,
    endpoint_url: str | None,
) -> None:
    """How many execution environments a function had, and why: inits, shutdowns, live,
    never-invoked and proactive ones, PC replacements, lifetimes.

    Reads the extension's metrics with GetMetricData (needs cloudwatch:GetMetricData and
    cloudwatch:ListMetrics) and its environment records from the function's log group with
    FilterLogEvents (logs:FilterLogEvents; lambda:GetFunctionConfiguration to find a custom log
    group). Live environments are counted from --lookback before the start.
    --provisioned auto needs lambda:ListProvisionedConcurrencyConfigs (or
    lambda:GetProvisionedConcurrencyConfig with --version); --cross-check needs logs:StartQuery,
    logs:GetQueryResults and logs:DescribeLogStreams.
    """
    from concurrency_observer.aws.report import resolve_window  # noqa: PLC0415
    from concurrency_observer.aws.session import client  # noqa: PLC0415

    if since is not None and start is not None:
        raise UserError("give either --since or --start, not both")
    if all_functions == (function_name is not None):
        raise UserError("give either --function F or --all")
    if all_functions and (function_version or provisioned is not None or cross_check or plot):
        raise UserError(
            "--all ranks every function: --version, --provisioned, --cross-check "
            "and --plot are for one --function"
        )
    window = resolve_window(
        now=datetime.now(timezone.utc),
        period=period,
        lookback=lookback,
        since=timedelta(hours=3) if since is None and start is None else since,
        start=start,
        end=end,
    )
    cloudwatch = client("cloudwatch", region, endpoint_url)
    if all_functions:
        from concurrency_observer.aws.ranking import rank_functions  # noqa: PLC0415
        from concurrency_observer.reporting.ranking import emit_ranking  # noqa: PLC0415

        logs = None if no_records else client("logs", region, endpoint_url)
        lambda_client = None if no_records else client("lambda", region)
        ranking = rank_functions(
            cloudwatch, namespace, window, sort_key, logs=logs, lambda_client=lambda_client
        )
        emit_ranking(ranking, output_format)
        return
    assert function_name is not None  # checked above
    request = _request(
        check_function_name(function_name),
        window,
        namespace=namespace,
        version=function_version,
        provisioned=provisioned,
        region=region,
    )
    logs = None if no_records else client("logs", region, endpoint_url)
    group, group_note = log_group, None
    if logs is not None and group is None:
        from concurrency_observer.aws.records import function_log_group  # noqa: PLC0415

        group, group_note = function_log_group(client("lambda", region), request.function_name)
    notes = [n for n in (_provisioned_note(request, provisioned), group_note) if n]
    result = _read(cloudwatch, request, logs=logs, log_group=group, notes=notes)
    if cross_check:
        result = _cross_checked(result, client("logs", region), group)
    _emit(result, output_format)
    if plot is not None:
        from concurrency_observer.reporting import write_chart  # noqa: PLC0415

        click.echo(f"wrote {write_chart(result, plot)}", err=True)


def _request(
    function_name: str,
    window: Any,
    *,
    namespace: str,
    version: str | None,
    provisioned: int | str | None,
    region: str | None,
) -> Any:
    from concurrency_observer.aws.report import ReportRequest  # noqa: PLC0415

    if provisioned != "auto":
        return ReportRequest(
            function_name=function_name,
            window=window,
            namespace=namespace,
            version=version,
            provisioned=provisioned if isinstance(provisioned, int) else None,
        )
    from concurrency_observer.aws.provisioned import read_provisioned  # noqa: PLC0415
    from concurrency_observer.aws.session import client  # noqa: PLC0415

    totals = read_provisioned(client("lambda", region), function_name, version)
    return ReportRequest(
        function_name=function_name,
        window=window,
        namespace=namespace,
        version=version,
        provisioned=totals.requested,
        allocated=totals.allocated,
        provisioned_source="lambda-api",
        provisioned_configs=totals.describe(),
    )


def _provisioned_note(request: Any, provisioned: int | str | None) -> str | None:
    if provisioned != "auto":
        return None
    if not request.provisioned_configs:
        return f"{request.function_name} has no provisioned concurrency configured now"
    return (
        f"provisioned concurrency as configured now (it may have changed during the window): "
        f"{request.provisioned_configs}"
    )


def _read(
    cloudwatch: Any, request: Any, *, logs: Any, log_group: str | None, notes: list[str]
) -> Any:
    from dataclasses import replace  # noqa: PLC0415

    from concurrency_observer.aws.report import read_report  # noqa: PLC0415

    result = read_report(cloudwatch, request, logs=logs, log_group=log_group)
    if not notes:
        return result
    return replace(result, notes=(*result.notes, *notes))


def _cross_checked(result: Any, logs: Any, log_group: str | None) -> Any:
    from dataclasses import replace  # noqa: PLC0415

    from concurrency_observer.aws.cross_check import cross_check  # noqa: PLC0415

    found = cross_check(
        logs,
        result.function_name,
        result.inits_total,
        start=result.window.start,
        end=result.window.end,
        version=result.version,
        log_group=log_group,
    )
    return replace(result, cross_check=found.to_dict())


def _emit(result: Any, output_format: str) -> None:
    from concurrency_observer.reporting import print_report, report_csv, report_json  # noqa: PLC0415

    if output_format == "table":
        print_report(result)
        return
    click.echo(report_json(result) if output_format == "json" else report_csv(result), nl=False)
    # Scripts read stdout; people still see why a figure may be off.
    for warning in result.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
