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


DURATION = DurationType()
TIMESTAMP = TimestampType()


def check_function_name(name: str) -> str:
    """``name`` if it is a Lambda function name, else a ``UserError`` saying what is expected."""
    if not _FUNCTION_NAME.fullmatch(name):
        raise UserError(
            f"invalid function name {name!r}: give the function's name (letters, digits, '-', "
            "'_', at most 64), not an ARN"
        )
    return name


@click.command(short_help="Inits, shutdowns and live environments of a function.")
@click.option("--function", "function_name", required=True, help="The Lambda function's name.")
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
    type=click.IntRange(min=0),
    help="The provisioned concurrency you asked for, to compare with.",
)
@options.namespace
@options.region
@options.endpoint_url
def report(
    *,
    function_name: str,
    function_version: str | None,
    since: timedelta | None,
    start: datetime | None,
    end: datetime | None,
    period: int,
    lookback: timedelta,
    output_format: str,
    plot: Path | None,
    provisioned: int | None,
    namespace: str,
    region: str | None,
    endpoint_url: str | None,
) -> None:
    """How many execution environments a function had: inits, shutdowns, live, lifetimes.

    Reads the extension's metrics with GetMetricData (needs cloudwatch:GetMetricData and
    cloudwatch:ListMetrics). Live environments are counted from --lookback before the start.
    """
    from concurrency_observer.aws.report import ReportRequest, read_report, resolve_window  # noqa: PLC0415
    from concurrency_observer.aws.session import client  # noqa: PLC0415

    if since is not None and start is not None:
        raise UserError("give either --since or --start, not both")
    window = resolve_window(
        now=datetime.now(timezone.utc),
        period=period,
        lookback=lookback,
        since=timedelta(hours=3) if since is None and start is None else since,
        start=start,
        end=end,
    )
    request = ReportRequest(
        function_name=check_function_name(function_name),
        window=window,
        namespace=namespace,
        version=function_version,
        provisioned=provisioned,
    )
    result = read_report(client("cloudwatch", region, endpoint_url), request)
    _emit(result, output_format)
    if plot is not None:
        from concurrency_observer.reporting import write_chart  # noqa: PLC0415

        click.echo(f"wrote {write_chart(result, plot)}", err=True)


def _emit(result: Any, output_format: str) -> None:
    from concurrency_observer.reporting import print_report, report_csv, report_json  # noqa: PLC0415

    if output_format == "table":
        print_report(result)
        return
    click.echo(report_json(result) if output_format == "json" else report_csv(result), nl=False)
    # Scripts read stdout; people still see why a figure may be off.
    for warning in result.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
