"""``concurrency-observer simulate``: a fleet of real Lambda environments here, then the report.

Builds the layer, starts an embedded CloudWatch (a moto server on 127.0.0.1, which also serves
CloudWatch Logs; or ``--endpoint-url``), runs the local control plane (``local/fleet.py``) under a
seeded load with a live display, each environment's output delivered to the function's log group
as Lambda does, shuts every environment down, reads the metrics and the environment records back
(``local/outcome.py``), prints the same report as ``report`` with the control plane's ground truth
beside it, the metric streams the run created, and a verdict: exit 0 when every figure matches
exactly, 1 when one does not. docs/simulate.md explains the defaults. Which options combine is
``local/setups.py``'s; the plan and the live display are ``reporting/simulation_display.py``'s,
the printout after the run ``reporting/simulation_output.py``'s.
``--mode managed-instances`` runs environments whose extension gets SHUTDOWN only: the Telemetry
API still gives it every invocation, so everything is compared. ``--runtime bash`` runs the
layer's bash engine, which counts INVOKE itself; its init durations come from the platform's lines
in the log group (``--log-format``), so everything is compared there too.
"""

from __future__ import annotations

import tempfile
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
    RUNTIME_PYTHON,
    RUNTIMES,
    check_setup,
    function_log_format,
)

if TYPE_CHECKING:
    from rich.console import Console

    from concurrency_observer.local.outcome import Outcome

THRESHOLD_MARGIN_S = 0.5  # no held environment is first invoked this close to the threshold


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
    from concurrency_observer.reporting.simulation_display import (  # noqa: PLC0415
        print_log_paths,
        print_logs,
        print_plan,
        run_with_display,
    )

    out = Console()
    progress = Console(stderr=True, highlight=False, soft_wrap=True)
    sink, provisioned, pc_max_lifetime = check_setup(
        _explicit_options(click.get_current_context()),
        mode=mode,
        runtime=runtime,
        sink=sink,
        provisioned=provisioned,
        pc_max_lifetime=pc_max_lifetime,
    )
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
        log_format=function_log_format(log_format, mode),
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
            print_plan(progress, settings)
            simulation = Simulation(
                settings,
                layer_dir,
                url,
                rie_path=rie_path,
                keep_logs=keep_logs,
                logs_url=logs_url,
            )
            try:
                truth = run_with_display(simulation, progress)
            finally:  # the logs explain a failure best, so they are shown then too
                if verbose:
                    print_logs(progress, simulation)
                if keep_logs:
                    print_log_paths(progress, simulation)
            outcome = read_back(simulation, truth, url, logs_url)
    outcome.wall_seconds = time.monotonic() - began
    finish(outcome, out, progress, json_path)


def _explicit_options(context: click.Context) -> set[str]:
    """The options given on the command line (or by their environment variable), not defaulted."""
    explicit = (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)
    return {name for name in context.params if context.get_parameter_source(name) in explicit}


def finish(outcome: Outcome, out: Console, progress: Console, json_path: Path | None) -> None:
    """Print the report, the ground truth and the verdict, write the JSON; exit 1 on a mismatch."""
    from concurrency_observer.reporting.simulation_output import (  # noqa: PLC0415
        print_outcome,
        write_outcome_json,
    )

    print_outcome(out, outcome)
    if json_path is not None:
        write_outcome_json(json_path, outcome)
        progress.print(f"wrote {json_path}")
    if not outcome.matches:
        raise click.exceptions.Exit(1)
