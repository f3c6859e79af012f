"""``concurrency-observer simulate``: one real Lambda environment on this machine, end to end.

Builds the layer, starts an embedded CloudWatch (a moto server on 127.0.0.1; none for the ``emf``
sink, or ``--endpoint-url``), runs one environment under the RIE with the extension from the layer,
invokes it, shuts it down (SIGTERM: the extension gets SHUTDOWN), reads the metrics back and
compares them with what happened. Until the local fleet lands, this is one environment.

The default init type is ``on-demand``: the RIE initializes an environment on its first invoke,
which is what Lambda does on demand; provisioned concurrency initializes ahead of any invoke, which
the RIE cannot do, so ``--init-type provisioned-concurrency`` only changes the label the extension
sees.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import click

from concurrency_observer import schema
from concurrency_observer.errors import UserError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from concurrency_observer.local.environment import LambdaEnvironment
    from concurrency_observer.local.readback import GroundTruth, MetricSummary

_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_READ_ATTEMPTS = 5  # an external CloudWatch is eventually consistent; moto answers at once
_LOG_LEVELS = ("ERROR", "WARNING", "INFO", "DEBUG")


def _function_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not _FUNCTION_NAME.fullmatch(value):
        raise click.BadParameter("use 1-64 letters, digits, '-' or '_' (a Lambda function name)")
    return value


@click.command()
@click.option(
    "--invocations",
    "-n",
    type=click.IntRange(0, 10_000),
    default=3,
    show_default=True,
    help="How many times to invoke the environment (0: the RIE never initializes it).",
)
@click.option(
    "--sink",
    type=click.Choice(["cloudwatch", "emf"]),
    default="cloudwatch",
    show_default=True,
    help="The extension's sink: PutMetricData to the (embedded) CloudWatch, or EMF lines.",
)
@click.option(
    "--init-type",
    type=click.Choice(schema.KNOWN_INIT_TYPES),
    default=schema.INIT_ON_DEMAND,
    show_default=True,
    help="AWS_LAMBDA_INITIALIZATION_TYPE inside the environment.",
)
@click.option(
    "--function-name",
    default="concurrency-observer-local",
    show_default=True,
    callback=_function_name,
    help="AWS_LAMBDA_FUNCTION_NAME inside the environment.",
)
@click.option(
    "--namespace",
    default=schema.DEFAULT_NAMESPACE,
    show_default=True,
    help="CloudWatch namespace the extension writes to.",
)
@click.option(
    "--endpoint-url",
    default=None,
    help="Use this CloudWatch endpoint instead of an embedded moto server (cloudwatch sink).",
)
@click.option(
    "--sleep-ms",
    type=click.IntRange(0, 60_000),
    default=0,
    show_default=True,
    help="How long each invocation of the function sleeps.",
)
@click.option(
    "--log-level",
    type=click.Choice(_LOG_LEVELS, case_sensitive=False),
    default=None,
    help="The extension's log level (CONCURRENCY_OBSERVER_LOG_LEVEL; default INFO).",
)
@click.option(
    "--keep-logs", is_flag=True, help="Keep the environment's log file and print where it is."
)
@click.option("--verbose", "-v", is_flag=True, help="Print the environment's whole log.")
def simulate(  # noqa: PLR0917 (click passes every option as an argument)
    invocations: int,
    sink: str,
    init_type: str,
    function_name: str,
    namespace: str,
    endpoint_url: str | None,
    sleep_ms: int,
    log_level: str | None,
    keep_logs: bool,
    verbose: bool,
) -> None:
    """Run one real Lambda environment here (the RIE) with the extension, and check its metrics."""
    from rich.console import Console  # noqa: PLC0415 (keeps --help instant)

    from concurrency_observer.aws.session import aws_errors  # noqa: PLC0415
    from concurrency_observer.layer import build_layer, extract_layer  # noqa: PLC0415
    from concurrency_observer.local import readback, rie  # noqa: PLC0415
    from concurrency_observer.local.cloudwatch import (  # noqa: PLC0415
        cloudwatch_client,
        cloudwatch_endpoint,
    )
    from concurrency_observer.local.environment import (  # noqa: PLC0415
        EnvironmentSettings,
        LambdaEnvironment,
        observer_env,
    )

    out = Console()
    progress = Console(stderr=True, highlight=False, soft_wrap=True)
    if endpoint_url is not None and sink != "cloudwatch":
        raise UserError("--endpoint-url is for the cloudwatch sink; the emf sink writes to the log")

    rie.check_host()
    rie_path = rie.rie_binary()
    progress.print(f"RIE: {rie_path} (aws-sam-cli {rie.SAM_CLI_VERSION})")
    with tempfile.TemporaryDirectory(prefix="concurrency-observer-simulate-") as scratch:
        built = build_layer(Path(scratch) / "layer.zip")
        layer_dir = extract_layer(built.path, Path(scratch) / "opt")
        progress.print(f"layer: {len(built.entries)} files, sha256 {built.sha256[:12]}")

        use_cloudwatch = sink == "cloudwatch"
        endpoint: AbstractContextManager[str | None] = (
            cloudwatch_endpoint(endpoint_url) if use_cloudwatch else nullcontext(None)
        )
        with endpoint as url:
            if url is not None:
                origin = "external" if endpoint_url else "embedded moto server"
                progress.print(f"CloudWatch: {url} ({origin})")
            settings = EnvironmentSettings(
                function_name=function_name,
                init_type=init_type,
                cloudwatch_endpoint=url,
                extra_env=observer_env(sink=sink, namespace=namespace, log_level=log_level),
            )
            since = datetime.now(timezone.utc)
            environment = LambdaEnvironment(layer_dir, settings, keep_work_dir=keep_logs)
            _run(environment, invocations, sleep_ms, progress, verbose=verbose)

            # The RIE initializes lazily: with no invoke there is no environment at all.
            ran = 1 if invocations > 0 else 0
            truth = readback.GroundTruth(inits=ran, shutdowns=ran, invocations=invocations)
            if url is not None:
                client = cloudwatch_client(url, settings.region)
                with aws_errors("reading the metrics back"):
                    summaries = _read_until_settled(
                        lambda: readback.read_cloudwatch(client, namespace, since),
                        truth,
                        function_name,
                    )
            else:
                summaries = readback.read_emf(environment.output, namespace)

    source = "CloudWatch" if use_cloudwatch else "EMF lines"
    out.print(_table(summaries, source, function_name))
    _verdict(out, truth, summaries, function_name)


def _run(
    environment: LambdaEnvironment,
    invocations: int,
    sleep_ms: int,
    progress: Console,
    *,
    verbose: bool,
) -> None:
    """Start, invoke and shut down the environment, printing progress; its log if ``verbose``."""
    try:
        with environment:
            progress.print(f"environment started: {environment.emulator_url}")
            latencies = _invoke(environment, invocations, sleep_ms)
            stop = environment.shutdown()
        _print_timings(
            progress, latencies, environment.init_duration_ms(), stop.duration_s, stop.forced
        )
    finally:  # the log explains a failure best, so it is shown then too
        if verbose:
            progress.rule("environment log")
            progress.print(environment.output, markup=False, highlight=False, end="")
            progress.rule()
        if environment.keep_work_dir and environment.work_dir is not None:
            progress.print(f"environment log kept: {environment.work_dir / 'output.log'}")


def _verdict(
    out: Console, truth: GroundTruth, summaries: list[MetricSummary], function_name: str
) -> None:
    """Print the one-line verdict; exit 1 if the metrics differ from what happened."""
    problems = truth.discrepancies(summaries, function_name)
    summary = f"{truth.inits} init, {truth.shutdowns} shutdown, {truth.invocations} invocations"
    if problems:
        out.print(f"[red]verdict: MISMATCH[/] with the truth ({summary}): " + "; ".join(problems))
        raise click.exceptions.Exit(1)
    out.print(f"[green]verdict: OK[/]: recorded exactly what happened ({summary})")


def _invoke(environment: LambdaEnvironment, count: int, sleep_ms: int) -> list[float]:
    """Invoke ``count`` times; the latencies in seconds. A failed invocation is an error."""
    latencies = []
    for _ in range(count):
        result = environment.invoke({"sleep_ms": sleep_ms} if sleep_ms else {})
        if result.status != 200 or result.function_error:
            raise UserError(
                f"the function failed (HTTP {result.status}): {result.body[:200]!r}; "
                "rerun with --verbose to see the environment's log"
            )
        latencies.append(result.latency_s)
    return latencies


def _print_timings(
    console: Console, latencies: list[float], init_ms: float | None, stop_s: float, forced: bool
) -> None:
    if latencies:
        first = f"first invoke {latencies[0] * 1000:.0f} ms"
        if init_ms is not None:
            first += f" (init {init_ms:.0f} ms)"
        warm = latencies[1:]
        rest = f", then median {statistics.median(warm) * 1000:.1f} ms" if warm else ""
        console.print(f"invoked {len(latencies)} times: {first}{rest}")
    else:
        console.print("not invoked: the RIE initializes on the first invoke, so nothing ran")
    how = "killed after the timeout" if forced else "SIGTERM, SHUTDOWN delivered"
    console.print(f"shut down in {stop_s * 1000:.0f} ms ({how})")


def _read_until_settled(
    read: Callable[[], list[MetricSummary]], truth: GroundTruth, function_name: str
) -> list[MetricSummary]:
    """Read until the figures match the truth or the attempts run out (eventual consistency)."""
    summaries = read()
    for _ in range(_READ_ATTEMPTS - 1):
        if not truth.discrepancies(summaries, function_name):
            break
        time.sleep(1.0)
        summaries = read()
    return summaries


def _table(summaries: list[MetricSummary], source: str, function_name: str) -> Table:
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=f"Metrics received ({source}), FunctionName={function_name}")
    table.add_column("metric", no_wrap=True)
    table.add_column("other dimension", overflow="fold")
    table.add_column("points", justify="right")
    table.add_column("sum", justify="right", no_wrap=True)
    for s in summaries:
        other = [f"{k}={v}" for k, v in s.dimensions if k != schema.FUNCTION_NAME]
        unit = " s" if s.unit == schema.UNIT_SECONDS else ""
        table.add_row(s.name, ", ".join(other) or "-", str(s.samples), f"{s.total:g}{unit}")
    if not summaries:
        table.add_row("(none)", "", "0", "")
    return table
