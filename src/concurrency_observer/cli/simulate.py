"""``concurrency-observer simulate``: a fleet of real Lambda environments here, then the report.

Builds the layer, starts an embedded CloudWatch (a moto server on 127.0.0.1, which also serves
CloudWatch Logs; or ``--endpoint-url``), runs the local control plane (``local/fleet.py``) under a
seeded load with a live display, each environment's output delivered to the function's log group
as Lambda does, shuts every environment down, reads the metrics and the environment records back
(``local/outcome.py``), prints the same report as ``report`` with the control plane's ground truth
beside it, the metric streams the run created, and a verdict: exit 0 when every figure matches
exactly, 1 when one does not. docs/simulate.md explains the defaults.
``--mode managed-instances`` runs environments whose extension gets SHUTDOWN only: the Telemetry
API still gives it every invocation, so everything is compared. ``--runtime bash`` runs the
layer's bash engine, which counts INVOKE itself; its init durations come from the platform's lines
in the log group (``--log-format``), so everything is compared there too.
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
    from rich.console import Console
    from rich.table import Table

    from concurrency_observer.local.fleet import FleetSnapshot
    from concurrency_observer.local.outcome import Outcome
    from concurrency_observer.local.simulation import (
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
    "with every python3 hidden, so the layer's bash engine records (EMF lines: the emf sink is "
    "implied; init durations from the platform's lines in the log group, as there is no "
    "Telemetry API). With --mode managed-instances: the RIE's LMI runtime with the layer's bash "
    "engine (CONCURRENCY_OBSERVER_ENGINE=bash), SHUTDOWN only, invocations from the platform's "
    "REPORT lines.",
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
@click.option(
    "--log-format",
    type=click.Choice(("text", "json"), case_sensitive=False),
    default=None,
    help="The function's log format (LoggingConfig.LogFormat), in which the harness writes "
    "Lambda's own lines (INIT_START, INIT_REPORT, REPORT; or platform.* objects) into the log "
    "group, where report reads init durations and statuses the records lack. Default: text; "
    "json on --mode managed-instances, which has no other.",
)
@click.option(
    "--system-log-level",
    type=click.Choice(("DEBUG", "INFO", "WARN"), case_sensitive=False),
    default="INFO",
    show_default=True,
    help="With --log-format json: Lambda's system log level. WARN drops the platform's lines "
    "(they are INFO): the figures only they give are then unknown.",
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
    log_format: str | None,
    system_log_level: str,
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
    bash runs a runtime without python3, where the layer's bash engine records and the init
    durations come from the platform's lines (--log-format text or json).
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
        log_format=_log_format(log_format, mode),
        system_log_level=system_log_level.upper(),
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


def _log_format(chosen: str | None, mode: str) -> str | None:
    """LoggingConfig.LogFormat's spelling; text is refused on Managed Instances (JSON only)."""
    if chosen is None:
        return None
    if chosen.lower() == "text" and mode == MODE_MANAGED_INSTANCES:
        raise UserError("--log-format text: Lambda Managed Instances writes JSON logs only")
    return "JSON" if chosen.lower() == "json" else "Text"


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
                "--runtime bash records with the layer's bash engine, which writes EMF lines "
                "only: use --sink emf (the default there)"
            )
        if "endpoint_url" in given:
            raise UserError("--endpoint-url does not apply to --runtime bash: it writes EMF lines")
        sink = SINK_EMF
    return sink, provisioned, pc_max_lifetime


def finish(outcome: Outcome, out: Console, progress: Console, json_path: Path | None) -> None:
    """Print the report, the ground truth and the verdict, write the JSON; exit 1 on a mismatch."""
    from concurrency_observer.reporting.simulation_output import print_outcome  # noqa: PLC0415

    print_outcome(out, outcome)
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

    from concurrency_observer.study.signals import interrupts_deferred, sigterm_as_interrupt  # noqa: PLC0415

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
