"""``concurrency-observer simulate``: a fleet of real Lambda environments here, then the report.

Builds the layer, starts an embedded CloudWatch (a moto server on 127.0.0.1, which also serves
CloudWatch Logs; or ``--endpoint-url``), runs the local control plane (``local/fleet.py``) under a
seeded load with a live display, each environment's output delivered to the function's log group
as Lambda does, shuts every environment down, reads the metrics and the environment records back
(``local/outcome.py``), prints the same report as ``report`` with the control plane's ground truth
beside it, the metric streams the run created, and a verdict: exit 0 when every figure matches
exactly, 1 when one does not. docs/simulate.md explains the defaults.
``--mode managed-instances`` and ``--runtime bash`` run setups whose extension gets SHUTDOWN only:
under Managed Instances the Telemetry API still gives it every invocation, so everything is
compared; with the bash fallback the verdict compares inits and shutdowns, and lists what is not
recorded.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from concurrency_observer import schema
from concurrency_observer.cli import options
from concurrency_observer.cli.extras import require_local_extra
from concurrency_observer.errors import UserError
from concurrency_observer.extension.config import LOG_LEVELS, SINKS
from concurrency_observer.local.setups import (
    DEFAULT_MAX_CONCURRENCY,
    MODE_MANAGED_INSTANCES,
    MODE_STANDARD,
    MODES,
    RUNTIME_BASH,
    RUNTIME_PYTHON,
    RUNTIMES,
    SINK_EMF,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import Console, RenderableType
    from rich.table import Table

    from concurrency_observer.aws.report import Report
    from concurrency_observer.local.fleet import FleetSnapshot
    from concurrency_observer.local.outcome import Outcome
    from concurrency_observer.local.platform_truth import PlatformVerdict
    from concurrency_observer.local.simulation import (
        Check,
        Simulation,
        SimulationSettings,
        SimulationStatus,
    )

THRESHOLD_MARGIN_S = 0.5  # no held environment is first invoked this close to the threshold
_DISPLAY_INTERVAL_S = 0.25


class SimulationInterrupted(UserError):
    """Ctrl-C or SIGTERM stopped the run; every environment was shut down first."""

    exit_code = 130


@click.command(short_help="Run real Lambda environments here and check the metrics.")
@click.option(
    "--provisioned",
    "-p",
    type=click.IntRange(0, 100),
    default=2,
    show_default=True,
    help="Provisioned concurrency: environments initialized up front (InitType "
    "provisioned-concurrency), each by a held warm-up invoke, not invoked until used.",
)
@click.option(
    "--rate",
    type=click.FloatRange(0, 200),
    default=4.0,
    show_default=True,
    help="Steady invocations per second (a seeded Poisson process).",
)
@click.option(
    "--duration",
    type=click.FloatRange(1, 3600),
    default=40.0,
    show_default=True,
    help="Seconds of load.",
)
@click.option(
    "--bursts",
    type=click.IntRange(0, 100),
    default=2,
    show_default=True,
    help="Bursts on top of the steady rate (in the first 70% of the run): they force "
    "on-demand scale-out.",
)
@click.option(
    "--burst-size",
    type=click.IntRange(0, 1000),
    default=8,
    show_default=True,
    help="Invocations arriving together in each burst.",
)
@click.option(
    "--work-ms",
    "--sleep-ms",
    type=click.IntRange(0, 60_000),
    default=300,
    show_default=True,
    help="How long each invocation keeps its environment busy.",
)
@click.option(
    "--max-environments",
    type=click.IntRange(1, 500),
    default=10,
    show_default=True,
    help="The concurrency limit (provisioned included); beyond it invocations are throttled.",
)
@click.option(
    "--idle-timeout",
    type=click.FloatRange(0.1, 3600),
    default=5.0,
    show_default=True,
    help="Seconds after which an idle on-demand environment is shut down.",
)
@click.option(
    "--over-provisioning",
    type=click.FloatRange(1.0, 10.0),
    default=1.5,
    show_default=True,
    help="ceil(P x factor) environments are brought up for P provisioned (at most P serve at "
    "once, so the spares may never be invoked): a known truth for checking the measurement.",
)
@click.option(
    "--proactive-rate",
    type=click.FloatRange(0, 10),
    default=0.2,
    show_default=True,
    help="On-demand environments initialized ahead of demand, per second (a seeded Poisson "
    "process): some are invoked later, some never.",
)
@click.option(
    "--provisioned-lead",
    type=click.FloatRange(0, 600),
    default=3.0,
    show_default=True,
    help="Seconds between the provisioned environments being ready and the first invocation "
    "(provisioned concurrency is set up ahead of traffic).",
)
@click.option(
    "--pc-max-lifetime",
    type=click.FloatRange(0, 3600),
    default=15.0,
    show_default=True,
    help="Seconds after which a provisioned environment is recycled: a replacement is "
    "initialized, then the old one shut down. 0: never.",
)
@click.option(
    "--prompt-threshold-ms",
    type=click.IntRange(100, 600_000),
    default=2000,
    show_default=True,
    help="A first invoke later than this after init is 'delayed' (proactive when on-demand); "
    "given to the extension as CONCURRENCY_OBSERVER_PROMPT_THRESHOLD_MS.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the arrivals.")
@click.option(
    "--sink",
    type=click.Choice(SINKS),
    default="cloudwatch",
    show_default=True,
    help="The extension's sink: PutMetricData to the (embedded) CloudWatch, or EMF lines.",
)
@options.endpoint_url
@options.namespace
@click.option(
    "--function-name",
    default=None,
    help="AWS_LAMBDA_FUNCTION_NAME inside the environments.  [default: "
    "concurrency-observer-local-<random>, new each run]",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the ground truth, the checks, the verdict and the report as JSON.",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default=None,
    help="The extension's log level (CONCURRENCY_OBSERVER_LOG_LEVEL; default INFO).",
)
@click.option(
    "--keep-logs", is_flag=True, help="Keep every environment's log file and print where they are."
)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default=MODE_STANDARD,
    show_default=True,
    help="standard: Lambda's usual environments, one invocation at a time each. "
    "managed-instances: Lambda Managed Instances (the RIE's LMI mode): each environment serves "
    "up to --max-concurrency invocations at once and initializes when started (InitType "
    "lambda-managed-instances); no provisioned concurrency nor recycling. The extension gets "
    "SHUTDOWN only there and counts invocations from the Telemetry API's platform events.",
)
@click.option(
    "--max-concurrency",
    type=click.IntRange(1, 64),
    default=DEFAULT_MAX_CONCURRENCY,
    show_default=True,
    help="With --mode managed-instances: invocations one environment serves at once; more are "
    "routed to another (started when all are full).",
)
@click.option(
    "--runtime",
    type=click.Choice(RUNTIMES),
    default=RUNTIME_PYTHON,
    show_default=True,
    help="python: the Python runtime and the Python extension. bash: a custom runtime in bash "
    "with every python3 hidden, so the layer's bash fallback records (SHUTDOWN only, EMF lines: "
    "the emf sink is implied; the verdict checks inits and shutdowns).",
)
@click.option(
    "--metrics",
    type=click.Choice(schema.METRICS_PROFILES),
    default=schema.DEFAULT_METRICS_PROFILE,
    show_default=True,
    help="The extension's metric profile (CONCURRENCY_OBSERVER_METRICS): lean, one metric per "
    "init type (EnvironmentDelta), or full, the six metrics under every dimension set. The "
    "environment records carry the rest either way.",
)
@click.option("--verbose", "-v", is_flag=True, help="Print every environment's log at the end.")
def simulate(  # noqa: PLR0917 (click passes every option as an argument)
    provisioned: int,
    rate: float,
    duration: float,
    bursts: int,
    burst_size: int,
    work_ms: int,
    max_environments: int,
    idle_timeout: float,
    over_provisioning: float,
    proactive_rate: float,
    provisioned_lead: float,
    pc_max_lifetime: float,
    prompt_threshold_ms: int,
    seed: int,
    sink: str,
    endpoint_url: str | None,
    namespace: str,
    function_name: str | None,
    json_path: Path | None,
    log_level: str | None,
    keep_logs: bool,
    verbose: bool,
    mode: str,
    max_concurrency: int,
    runtime: str,
    metrics: str,
) -> None:
    """Run a fleet of real Lambda environments here under load, and check what was recorded.

    A local control plane routes each invocation to an idle environment, starts on-demand ones
    when all are busy (throttling beyond --max-environments), shuts idle ones down after
    --idle-timeout, and brings --provisioned environments up front, recycling them after
    --pc-max-lifetime; it also initializes on-demand environments ahead of demand
    (--proactive-rate). The RIE initializes an environment on its first invoke, so those
    initialized ahead are brought up by a held warm-up invoke, let through (and counted as an
    invocation) when the first invocation is routed there. Then the report is read back and
    compared with the ground truth, class by class (docs/simulate.md).

    --mode managed-instances runs Lambda Managed Instances environments instead, several
    invocations at once in each (SHUTDOWN only: invocations from the Telemetry API); --runtime
    bash runs a runtime without python3, which records inits and shutdowns only, and the verdict
    says what is not recorded there.
    """
    from rich.console import Console  # noqa: PLC0415 (keeps --help instant)

    from concurrency_observer.cli.report import check_function_name  # noqa: PLC0415
    from concurrency_observer.layer import build_layer, extract_layer  # noqa: PLC0415
    from concurrency_observer.local import rie  # noqa: PLC0415
    from concurrency_observer.local.cloudwatch import cloudwatch_endpoint  # noqa: PLC0415
    from concurrency_observer.local.fleet import FleetConfig  # noqa: PLC0415
    from concurrency_observer.local.outcome import read_back  # noqa: PLC0415
    from concurrency_observer.local.simulation import (  # noqa: PLC0415
        Simulation,
        SimulationSettings,
        managed_instances_fleet,
        unique_function_name,
    )

    out = Console()
    progress = Console(stderr=True, highlight=False, soft_wrap=True)
    sink, provisioned, pc_max_lifetime = _check_setup(
        _explicit_options(click.get_current_context()),
        mode=mode,
        runtime=runtime,
        sink=sink,
        provisioned=provisioned,
        pc_max_lifetime=pc_max_lifetime,
    )
    if 0 < pc_max_lifetime < 1:
        raise UserError("--pc-max-lifetime must be at least 1 second (or 0: never recycle)")
    if endpoint_url is not None and sink != "cloudwatch":
        raise UserError("--endpoint-url is for the cloudwatch sink; the emf sink writes to the log")
    # The embedded moto server also stands for CloudWatch Logs, where the records are delivered.
    require_local_extra("simulate", moto=endpoint_url is None)
    fleet_config = FleetConfig(
        max_environments=max_environments,
        idle_timeout=idle_timeout,
        over_provisioning=over_provisioning,
        prompt_threshold=prompt_threshold_ms / 1000,
        threshold_margin=min(THRESHOLD_MARGIN_S, prompt_threshold_ms / 4000),
        pc_max_lifetime=pc_max_lifetime or None,
    )
    if mode == MODE_MANAGED_INSTANCES:
        fleet_config = managed_instances_fleet(fleet_config, max_concurrency)
    wanted = fleet_config.provisioned_environments(provisioned)
    if wanted > max_environments:
        raise UserError(
            f"--provisioned {provisioned} x --over-provisioning {over_provisioning:g} = {wanted} "
            f"environments, more than --max-environments {max_environments}"
        )
    settings = SimulationSettings(
        provisioned=provisioned,
        rate=rate,
        duration=duration,
        work_ms=work_ms,
        bursts=bursts,
        burst_size=burst_size,
        seed=seed,
        proactive_rate=proactive_rate,
        provisioned_lead=provisioned_lead,
        fleet=fleet_config,
        sink=sink,
        namespace=namespace,
        function_name=check_function_name(function_name or unique_function_name()),
        log_level=log_level.upper() if log_level else None,
        mode=mode,
        runtime=runtime,
        metrics=metrics,
    )

    began = time.monotonic()
    rie.check_host()
    rie_path = rie.rie_binary()
    progress.print(f"RIE: {rie_path} (aws-sam-cli {rie.SAM_CLI_VERSION})")
    with tempfile.TemporaryDirectory(prefix="concurrency-observer-simulate-") as scratch:
        built = build_layer(Path(scratch) / "layer.zip")
        layer_dir = extract_layer(built.path, Path(scratch) / "opt")
        progress.print(f"layer: {len(built.entries)} files, sha256 {built.sha256[:12]}")
        with cloudwatch_endpoint(endpoint_url) as logs_url:
            url = logs_url if sink == "cloudwatch" else None
            origin = "external" if endpoint_url else "embedded moto server"
            what = "CloudWatch and CloudWatch Logs" if url else "CloudWatch Logs (records)"
            progress.print(f"{what}: {logs_url} ({origin})")
            _print_plan(progress, settings)
            simulation = Simulation(
                settings,
                layer_dir,
                url,
                rie_path=rie_path,
                keep_logs=keep_logs,
                logs_url=logs_url,
            )
            try:
                truth = _run_with_display(simulation, progress)
            finally:  # the logs explain a failure best, so they are shown then too
                if verbose:
                    _print_logs(progress, simulation)
                if keep_logs:
                    _print_log_paths(progress, simulation)
            outcome = read_back(simulation, truth, url, logs_url)
    outcome.wall_seconds = time.monotonic() - began
    finish(outcome, out, progress, json_path)


def _explicit_options(context: click.Context) -> set[str]:
    """The options given on the command line (or by their environment variable), not defaulted."""
    explicit = (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)
    return {name for name in context.params if context.get_parameter_source(name) in explicit}


def _check_setup(
    given: set[str], *, mode: str, runtime: str, sink: str, provisioned: int, pc_max_lifetime: float
) -> tuple[str, int, float]:
    """Refuse options the mode or runtime cannot honour; the sink, provisioned and lifetime to use.

    Lambda Managed Instances has no provisioned concurrency (nor its recycling): their defaults
    become 0 there, and asking for them is refused. The bash fallback writes EMF lines only: the
    emf sink is implied, and asking for cloudwatch is refused.
    """
    if mode != MODE_MANAGED_INSTANCES and "max_concurrency" in given:
        raise UserError("--max-concurrency is for --mode managed-instances")
    if mode == MODE_MANAGED_INSTANCES:
        if runtime != RUNTIME_PYTHON:
            raise UserError(
                "--mode managed-instances runs the Python runtime here (the RIE's LMI mode runs "
                "its own concurrent bootstrap): drop --runtime"
            )
        for option, value in (("provisioned", provisioned), ("pc_max_lifetime", pc_max_lifetime)):
            if option in given and value:
                flag = "--" + option.replace("_", "-")
                raise UserError(
                    f"{flag} does not apply to --mode managed-instances: Lambda Managed Instances "
                    "has no provisioned concurrency"
                )
        provisioned, pc_max_lifetime = 0, 0.0
    if runtime == RUNTIME_BASH:
        if "sink" in given and sink != SINK_EMF:
            raise UserError(
                "--runtime bash records with the layer's bash fallback, which writes EMF lines "
                "only: use --sink emf (the default there)"
            )
        if "endpoint_url" in given:
            raise UserError("--endpoint-url does not apply to --runtime bash: it writes EMF lines")
        sink = SINK_EMF
    return sink, provisioned, pc_max_lifetime


def finish(outcome: Outcome, out: Console, progress: Console, json_path: Path | None) -> None:
    """Print the report, the ground truth and the verdict, write the JSON; exit 1 on a mismatch."""
    _print_outcome(out, outcome)
    if json_path is not None:
        _write_json(json_path, outcome)
        progress.print(f"wrote {json_path}")
    if not outcome.matches:
        raise click.exceptions.Exit(1)


def _print_plan(console: Console, settings: SimulationSettings) -> None:
    fleet = settings.fleet
    provisioned = fleet.provisioned_environments(settings.provisioned)
    extra = "" if provisioned == settings.provisioned else f" (x{fleet.over_provisioning:g})"
    lead = f"{settings.provisioned_lead:g}s after provisioning, " if settings.provisioned else ""
    pc = (
        f"{provisioned} provisioned{extra}, "
        + (f"recycled after {fleet.pc_max_lifetime:g}s, " if fleet.pc_max_lifetime else "")
        if settings.provisioned
        else ""
    )
    console.print(
        f"function {settings.function_name}, namespace {settings.namespace}, sink {settings.sink}"
        f"\nload: {lead}{settings.rate:g}/s for {settings.duration:g}s + {settings.bursts} "
        f"bursts of {settings.burst_size}, {settings.work_ms} ms each, seed {settings.seed}"
        f"\nfleet: {pc}at most {fleet.max_environments} environments, idle timeout "
        f"{fleet.idle_timeout:g}s, {settings.proactive_rate:g}/s initialized ahead of demand"
        + f"\nfirst invoke: prompt within {fleet.prompt_threshold:g}s of init, later delayed"
    )
    if settings.managed_instances:
        console.print(
            f"mode: Lambda Managed Instances, up to {fleet.max_concurrency} invocations at once "
            "per environment, each initialized when started (InitType lambda-managed-instances)"
        )
    if settings.runtime == RUNTIME_BASH:
        console.print("runtime: bash, no python3 in the environments: the layer's bash fallback")
    recording = settings.recording()
    if not recording.invocations:
        console.print(
            f"[dim]{recording.why}: inits and shutdowns are recorded, invocations and how each "
            "environment was used are not[/]"
        )
    if settings.managed_instances:
        return  # its environments initialize when started: nothing is held
    counted = ", and counts it as an invocation" if recording.invocations else ""
    console.print(
        "[dim]the RIE initializes on the first invoke: environments initialized ahead of "
        "demand hold that invoke (a warm-up) until an invocation is routed there; then the "
        f"extension sees it{counted}[/]"
    )


def _run_with_display(simulation: Simulation, console: Console) -> FleetSnapshot:
    """Run the simulation in a thread under a live display; Ctrl-C/SIGTERM stop it cleanly."""
    from rich.live import Live  # noqa: PLC0415

    from concurrency_observer.study import interrupts_deferred, sigterm_as_interrupt  # noqa: PLC0415

    stop = threading.Event()
    done = threading.Event()
    failure: list[BaseException] = []

    def work() -> None:
        try:
            simulation.run(stop)
        except BaseException as exc:  # handed to the main thread, raised there
            failure.append(exc)
        finally:
            done.set()

    # Waiting on an Event, not Thread.join: a join cut by Ctrl-C can report a live thread as
    # finished, and the environments must be shut down before this function returns.
    def follow(live: Live) -> None:
        while not done.wait(_DISPLAY_INTERVAL_S):
            live.update(_status_table(simulation.status()))

    worker = threading.Thread(target=work, name="simulation")
    interrupted = False
    with Live(_status_table(simulation.status()), console=console, refresh_per_second=4) as live:
        worker.start()
        try:
            with sigterm_as_interrupt():
                follow(live)
        except KeyboardInterrupt:
            interrupted = True
            stop.set()

            def still_stopping() -> None:
                console.print("shutting every environment down first, please wait")

            with interrupts_deferred(still_stopping):
                follow(live)
        live.update(_status_table(simulation.status()))
    worker.join()
    if not console.is_terminal:
        console.print()  # a live display that is not a terminal's ends without a newline
    if failure:
        raise failure[0]
    if interrupted:
        raise SimulationInterrupted("interrupted; every environment was shut down")
    return simulation.fleet.snapshot()


def _status_table(status: SimulationStatus) -> Table:
    from rich.table import Table  # noqa: PLC0415

    fleet = status.fleet
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("phase", f"{status.phase}  ({status.elapsed:.0f}s)")
    table.add_row(
        "invocations",
        f"{status.sent}/{status.scheduled} sent, {fleet.served} served, "
        f"{fleet.throttled} throttled, {fleet.failed} failed",
    )
    live = ", ".join(f"{n} {t}" for t, n in sorted(fleet.live.items()) if n) or "none"
    table.add_row(
        "environments",
        f"{fleet.live_total} live ({live}), {fleet.starting} starting, {fleet.busy} busy, "
        f"peak {fleet.peak_live}"
        + (
            f", up to {fleet.peak_per_environment} invocations at once in one"
            if fleet.peak_per_environment > 1
            else ""
        ),
    )
    table.add_row(
        "lifecycle",
        f"{fleet.started_total} started ({fleet.proactive} ahead of demand, "
        f"{fleet.replacements} PC replacements), {fleet.stopped_total} stopped, "
        f"{fleet.idle_shutdowns} idle shutdowns, {fleet.held} initialized not invoked yet",
    )
    usage = ", ".join(
        f"{fleet.first_invoke_count(None, c)} {c}" for c in schema.FIRST_INVOKE_CLASSES
    )
    table.add_row("first invoke", f"of those stopped: {usage}")
    return table


def _print_outcome(out: Console, outcome: Outcome) -> None:
    from concurrency_observer.reporting import print_report  # noqa: PLC0415

    if outcome.report is not None:
        print_report(outcome.report, out)
    else:
        out.print(f"[yellow]no report:[/] {outcome.report_error}")
    out.print(_classes_table(outcome.truth, outcome.settings))
    out.print(_truth_table(outcome))
    if outcome.platform is not None:
        out.print(_platform_table(outcome.platform))
    out.print(_truth_notes(outcome.truth, outcome.settings, outcome.report))
    recording = outcome.settings.recording()
    summary = (
        f"{outcome.truth.started_total} environments started, {outcome.truth.stopped_total} "
        f"stopped, {outcome.truth.invocations_total} invocations"
    )
    if outcome.matches and recording.invocations:
        out.print(
            f"[green]verdict: MATCH[/]: {outcome.source} recorded exactly what the control plane "
            f"did ({summary}), per init type and in total, and how each environment was used "
            f"(never, prompt, delayed) per init type{_cold_start_clause(outcome.checks)}"
        )
    elif outcome.matches:
        out.print(
            f"[green]verdict: MATCH[/]: {outcome.source} recorded exactly the inits and "
            f"shutdowns the control plane did ({outcome.truth.started_total} environments "
            f"started, {outcome.truth.stopped_total} stopped), per init type and in total; "
            f"not recorded here, so not compared: invocations ({outcome.truth.invocations_total}) "
            f"and how each environment was used ({recording.why})"
        )
    else:
        wrong = [c for c in outcome.checks if not c.matches]
        platform = outcome.platform
        platform_detail = (
            []
            if platform is None or platform.matches
            else [
                f"init durations: {len(platform.recorded_durations_ms)} recorded, "
                f"{len(platform.truth.init_durations_ms)} reported by the RIE, largest gap "
                f"{platform.largest_gap_ms} ms; failed inits: recorded "
                f"{platform.recorded_failed}, truth {platform.truth.failed_inits}"
            ]
        )
        detail = "; ".join(
            platform_detail
            + [
                f"{c.metric} ({c.init_type or 'all'}"
                + (f", FirstInvoke {c.first_invoke}" if c.first_invoke else "")
                + f"): recorded {c.recorded:g}, truth {c.truth}"
                for c in wrong
            ]
        )
        out.print(f"[red]verdict: MISMATCH[/] with the ground truth ({summary}): {detail}")
    out.print(_bill_line(outcome))
    out.print(f"[dim]wall time {outcome.wall_seconds:.1f}s[/]")


def _cold_start_clause(checks: Sequence[Check]) -> str:
    """ ", and the cold-start share (felt of invocations)" when both were compared."""
    from concurrency_observer.local.simulation import (  # noqa: PLC0415
        COLD_STARTS_FELT,
        LAMBDA_INVOCATIONS,
    )

    totals = {c.metric: c.truth for c in checks if c.init_type is None}
    felt, invocations = totals.get(COLD_STARTS_FELT), totals.get(LAMBDA_INVOCATIONS)
    if felt is None or not invocations:
        return ""
    share = felt / invocations
    return f", and the cold-start share ({felt} of {invocations} invocations, {share:.2%})"


def _bill_line(outcome: Outcome) -> str:
    """The run's own bill: metric streams created (billed per month) and records written."""
    from concurrency_observer import pricing  # noqa: PLC0415

    settings = outcome.settings
    where = (
        f"ListMetrics in namespace {settings.namespace}"
        if settings.sink == "cloudwatch"
        else "the EMF lines, as CloudWatch would extract them"
    )
    streams = outcome.metric_streams
    price = "" if streams is None else f", ${pricing.metrics_usd_per_month(streams):.2f}/month"
    lost = (
        f"; [red]{len(outcome.delivery_errors)}+ environments' output not delivered to the log "
        f"group: {outcome.delivery_errors[0]}[/]"
        if outcome.delivery_errors
        else ""
    )
    return (
        f"metric streams created: {streams} ({settings.metrics} profile; {where}{price} at list "
        f"price); environment records: {outcome.records}, {outcome.record_bytes} bytes{lost}"
    )


def _platform_table(platform: PlatformVerdict) -> Table:
    """Init durations and failed inits: the RIE's own reports beside the records."""
    from rich.table import Table  # noqa: PLC0415

    from concurrency_observer.aws.report_usage import nearest_rank  # noqa: PLC0415
    from concurrency_observer.local.platform_truth import TOLERANCE_MS  # noqa: PLC0415

    table = Table(
        title="The platform's account: the RIE's init reports vs the records",
        title_justify="left",
    )
    for name in ("figure", "the RIE reported", "recorded", ""):
        table.add_column(name, justify="left" if name == "figure" else "right", no_wrap=True)
    truth, recorded = platform.truth.init_durations_ms, platform.recorded_durations_ms
    gap = platform.largest_gap_ms
    same_count = len(truth) == len(recorded)
    table.add_row("inits with a duration", str(len(truth)), str(len(recorded)), _mark(same_count))
    for percent in (50, 90, 100):
        label = "max" if percent == 100 else f"p{percent}"
        found = [nearest_rank(list(values), percent) for values in (truth, recorded)]
        cells = ["-" if v is None else f"{v:.3f}" for v in found]
        table.add_row(f"init duration {label} (ms)", *cells, "")
    table.add_row(
        "largest gap, init by init (ms)",
        "",
        "-" if gap is None else f"{gap:.3f}",
        _mark(gap is not None and gap <= TOLERANCE_MS),
    )
    failed_ok = platform.recorded_failed == platform.truth.failed_inits
    table.add_row(
        "failed inits",
        str(platform.truth.failed_inits),
        str(platform.recorded_failed),
        _mark(failed_ok),
    )
    return table


def _mark(ok: bool) -> str:
    return "[green]=[/]" if ok else "[red]≠[/]"


def _truth_table(outcome: Outcome) -> Table:
    """Each figure beside the control plane's, grouped under a heading per init type (then
    "all init types"), so the figure's name keeps the width at 80 columns."""
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=f"Ground truth (control plane) vs {outcome.source}", title_justify="left")
    table.add_column("figure")
    for name in ("control plane", outcome.source, ""):
        table.add_column(name, justify="right", no_wrap=True)
    rows = [(c, f"{c.recorded:g}", _mark(c.matches)) for c in outcome.checks]
    rows += [(c, "[dim]not recorded[/]", "[dim]-[/]") for c in outcome.unrecorded]
    scopes: list[str | None] = [*sorted({c.init_type for c, _, _ in rows if c.init_type}), None]
    for scope in scopes:
        mine = [row for row in rows if row[0].init_type == scope]
        if not mine:
            continue
        if table.row_count:
            table.add_section()
        table.add_row(f"[bold]{scope or 'all init types'}[/]")
        for check, recorded, mark in mine:
            table.add_row(f"  {check.label}", str(check.truth), recorded, mark)
    return table


def _classes_table(truth: FleetSnapshot, settings: SimulationSettings) -> Table:
    """Why each environment exists, per init type: the control plane's side of every class."""
    from rich.table import Table  # noqa: PLC0415

    threshold = settings.fleet.prompt_threshold
    types = sorted(set(truth.started) | {t for t, _ in truth.first_invoke})
    table = Table(title="Why each environment exists (control plane)", title_justify="left")
    table.add_column("environments")
    for init_type in types:
        table.add_column(init_type, justify="right", no_wrap=True)
    table.add_column("all", justify="right")

    def row(label: str, counts: list[int | None]) -> None:
        known = [n for n in counts if n is not None]
        cells = ["-" if n is None else str(n) for n in counts]
        table.add_row(label, *cells, str(sum(known)))

    row("created (inits)", [truth.started.get(t, 0) for t in types])
    labels = {  # of those shut down: every one is, by the end of a run
        schema.FIRST_INVOKE_NEVER: "never invoked",
        schema.FIRST_INVOKE_PROMPT: f"prompt: 1st invoke <= {threshold:g}s",
        schema.FIRST_INVOKE_DELAYED: f"delayed: 1st invoke > {threshold:g}s",
    }
    for usage, label in labels.items():
        row(label, [truth.first_invoke.get((t, usage), 0) for t in types])
    provisioned = schema.INIT_PROVISIONED
    row(
        "initialized ahead of demand",
        [None if t == provisioned else truth.proactive for t in types],
    )
    if not settings.managed_instances:  # no provisioned concurrency there, so no recycling
        row(
            "replacements (recycled)",
            [truth.replacements if t == provisioned else None for t in types],
        )
    return table


def _peak_source(report: Report) -> str:
    if report.figures_source == "records":
        return "exact, from the records' init and shutdown instants"
    return "at period ends, from the metric"


def _truth_notes(
    truth: FleetSnapshot, settings: SimulationSettings, report: Report | None
) -> RenderableType:
    from rich.text import Text  # noqa: PLC0415

    counted = "the extension counts both" if settings.recording().invocations else "not recorded"
    lines = [
        f"invocations: {truth.served} from the load + {truth.warmups} held warm-ups let through "
        f"({counted}); "
        f"{truth.throttled} throttled (at --max-environments {settings.fleet.max_environments}), "
        f"{truth.failed} failed",
        f"environments: peak {truth.peak_live} live, {truth.idle_shutdowns} shut down after "
        f"{settings.fleet.idle_timeout:g}s idle, the rest at the end (staggered); "
        f"{truth.forced_shutdowns} had to be killed",
        f"peak live: control plane {truth.peak_live}, the report "
        + (f"{report.live_peak} ({_peak_source(report)})" if report is not None else "none")
        + "; the report's live series counts environments alive at the end of each 5-second "
        "period",
        f"ahead of demand: {truth.proactive} {settings.fleet.demand_init_type} inits"
        + (
            ""
            if settings.managed_instances
            else f"; recycling: {truth.replacements} provisioned replacements initialized, "
            f"{truth.recycled} old ones shut down"
        ),
    ]
    if settings.managed_instances:
        lines.append(
            f"managed instances: up to {settings.fleet.max_concurrency} invocations at once per "
            f"environment; at most {truth.peak_per_environment} were in one at once"
        )
    if truth.near_threshold and settings.recording().invocations:
        lines.append(
            f"{truth.near_threshold} cold start(s) first invoked later than "
            f"{settings.fleet.prompt_threshold - settings.fleet.threshold_margin:g}s after "
            "their init was sent: the control plane's gap is an upper bound (it includes the "
            "extension's own start), so near the threshold the extension may see prompt"
        )
    lines.extend(f"error: {error}" for error in truth.errors[:5])
    return Text("\n".join(lines), style="dim")


def _print_logs(console: Console, simulation: Simulation) -> None:
    for environment in simulation.fleet.environments():
        console.rule(f"environment {environment.name}")
        console.print(getattr(environment, "output", ""), markup=False, highlight=False, end="")
    console.rule()


def _print_log_paths(console: Console, simulation: Simulation) -> None:
    for environment in simulation.fleet.environments():
        work_dir = getattr(environment, "work_dir", None)
        if work_dir is not None:
            console.print(f"environment {environment.name} log kept: {work_dir / 'output.log'}")


def _write_json(path: Path, outcome: Outcome) -> None:
    try:
        path.write_text(json.dumps(outcome.to_dict(), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from exc
