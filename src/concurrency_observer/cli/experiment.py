"""``concurrency-observer experiment``: the provisioned-concurrency study, on AWS or locally.

The engine is ``concurrency_observer.study``; this module parses options, guards the bill (cost
estimate, confirmation), shows progress with rich and writes the outputs. boto3 and matplotlib are
imported only when a run needs them. ``--local`` runs the same study on the local fleet
(``local/provisioning.py``): no account, no bill, and a known truth (``--over-provisioning``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from concurrency_observer import schema
from concurrency_observer.cli import options
from concurrency_observer.cli.extras import require_local_extra
from concurrency_observer.errors import UserError
from concurrency_observer.extension.config import SINKS
from concurrency_observer.study.clock import Clock, SystemClock
from concurrency_observer.study.loop import Study
from concurrency_observer.study.plan import StudyPlan, parse_levels
from concurrency_observer.study.ports import StudyListener, WaitProgress
from concurrency_observer.study.signals import sigterm_as_interrupt
from concurrency_observer.study.state import StateStore, StudyState, pending_runs
from concurrency_observer.study.summary import summarize

AUTO_NAMESPACE = "auto"
# The waits' defaults on AWS, and locally where moto holds every point the moment it is put.
AWS_WAITS = {"settle": 180.0, "timeout": 1200.0, "cooldown": 60.0, "poll": 15.0}
LOCAL_WAITS = {"settle": 3.0, "timeout": 120.0, "cooldown": 1.0, "poll": 0.5}
LOCAL_FUNCTION = "concurrency-observer-local-study"
LOCAL_MAX_ENVIRONMENTS = 60  # ~45 MB each: bounded so a typo cannot exhaust the machine


class StudyInterrupted(UserError):
    """Ctrl-C or SIGTERM stopped the study; the configuration was restored, the state kept."""

    exit_code = 130


class RichListener:
    """Shows the engine's notes as lines and its waits as one live progress bar."""

    def __init__(self, console: Console) -> None:
        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task: TaskID | None = None
        self._label = ""

    def __enter__(self) -> RichListener:
        self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._bar.stop()

    def note(self, message: str) -> None:
        """A line above the progress bar."""
        self._bar.console.print(message, highlight=False)

    def progress(self, update: WaitProgress) -> None:
        """Move the bar; a new wait (another label) gets a fresh bar."""
        if self._task is None or update.label != self._label:
            if self._task is not None:
                self._bar.remove_task(self._task)
            self._task = self._bar.add_task(update.label, total=update.total, detail="")
            self._label = update.label
        self._bar.update(
            self._task, completed=update.completed, total=update.total, detail=update.detail
        )


def _resolve_region(region: str | None) -> str:
    """--region, or the region of the standard AWS configuration (no network call)."""
    if region:
        return region
    import boto3  # noqa: PLC0415

    resolved = boto3.session.Session().region_name
    if not resolved:
        raise UserError("no region set (use --region or set AWS_REGION)")
    return str(resolved)


def _confirm(yes: bool, console: Console) -> None:
    """Ask before spending money, unless ``--yes`` (the caller refuses first without a terminal)."""
    if yes:
        return
    if not click.confirm("start the study?", default=False):
        raise UserError("not started; nothing was changed")
    console.print()


def _clock() -> Clock:
    """The clock of a run (tests hand in a ManualClock)."""
    return SystemClock()


def _clients(region: str, endpoint_url: str | None) -> tuple[Any, Any]:
    """The Lambda and CloudWatch clients of a run (tests hand in stubbed ones)."""
    from concurrency_observer.aws.session import client  # noqa: PLC0415

    return client("lambda", region), client("cloudwatch", region, endpoint_url)


def _logs_client(region: str, endpoint_url: str | None) -> Any:
    """The CloudWatch Logs client the records are read with (a local endpoint serves both)."""
    from concurrency_observer.aws.session import client  # noqa: PLC0415

    return client("logs", region, endpoint_url)


def _run_on_aws(
    plan: StudyPlan,
    store: StateStore,
    *,
    function: str,
    alias: str,
    region: str,
    endpoint_url: str | None,
    namespace: str,
    yes: bool,
    console: Console,
) -> StudyState:
    """Check the function, show the cost, confirm, run the study with a live display."""
    from concurrency_observer.aws import experiment as aws  # noqa: PLC0415

    lambda_client, cloudwatch_client = _clients(region, endpoint_url)
    clock = _clock()
    facts = aws.describe_function(lambda_client, function, alias)
    if namespace == AUTO_NAMESPACE:
        namespace = facts.namespace or schema.DEFAULT_NAMESPACE
    target = aws.LambdaProvisioning(
        lambda_client, function, alias, poll_interval=min(plan.poll_interval, 10.0), clock=clock
    )
    counter = aws.CloudWatchInitCounter(cloudwatch_client, facts.name, namespace, clock=clock)
    usage = aws.CloudWatchUsageCounter(
        cloudwatch_client,
        facts.name,
        namespace,
        clock=clock,
        records=aws.log_group_records(
            _logs_client(region, endpoint_url), facts.log_group, facts.name
        ),
    )
    pending = pending_runs(plan, store.load(plan))

    others = aws.other_provisioned_qualifiers(lambda_client, function, alias)
    if others:
        console.print(
            f"[yellow]warning:[/] {', '.join(others)} of {facts.name} also have provisioned "
            "concurrency; the count covers the whole function, so their new environments would "
            "be counted too"
        )
    if not facts.layers:
        console.print(
            f"[yellow]warning:[/] {target.description} has no layers: unless the extension is "
            "in its image, nothing will be counted"
        )
    estimate = aws.estimate_cost(
        [level for level, _ in pending], plan, facts.memory_mb, facts.architecture
    )
    console.print(
        f"study of {target.description} in {region}: levels {', '.join(map(str, plan.levels))} "
        f"× {plan.repeats} repeats, {len(pending)} to run; counting {schema.ENVIRONMENT_INIT} "
        f"in namespace {namespace}"
    )
    console.print(estimate.summary(region))
    _confirm(yes, console)
    return run_with_display(
        lambda listener: Study(plan, target, counter, store, listener, clock, usage), console
    )


def run_with_display(make_study: Callable[[StudyListener], Study], console: Console) -> StudyState:
    """Run the study ``make_study`` builds around a live display; SIGTERM acts as Ctrl-C.

    The engine restores the original configuration before an interrupt reaches this function,
    which turns it into one line saying what was saved. The local fleet's path uses this too.
    """
    with RichListener(console) as listener, sigterm_as_interrupt():
        study = make_study(listener)
        try:
            return study.run()
        except KeyboardInterrupt:
            saved = len(study.store.load(study.plan).results)
            raise StudyInterrupted(
                f"interrupted; {saved} of {len(study.plan.runs())} repeats are saved in "
                f"{study.store.path.parent}: run the same command to continue"
            ) from None


@click.command(short_help="Measure environments per provisioned concurrency level.")
@click.option("--function", "function", metavar="NAME", help="Function name or ARN.")
@click.option("--alias", metavar="ALIAS", help="Alias (or version) to provision.")
@click.option(
    "--levels",
    required=True,
    metavar="N,N,...",
    help="Provisioned concurrency levels to request, e.g. 10,50,100.",
)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Measurements per level; the table gives their mean and stdev.",
)
@click.option(
    "--settle",
    type=click.FloatRange(min=0),
    help="Seconds the count must stay unchanged before it is recorded. [default: 180; local: 3]",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    help="Seconds to wait for READY, and again at most for the count to settle. "
    "[default: 1200; local: 120]",
)
@click.option(
    "--cooldown",
    type=click.FloatRange(min=0),
    help="Seconds to wait after removing a level before the next one. [default: 60; local: 1]",
)
@click.option(
    "--poll",
    type=click.FloatRange(min=0.1),
    help="Seconds between two reads of the count. [default: 15; local: 0.5]",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the state, CSV, JSON and PNG. [default: study-FUNCTION-ALIAS]",
)
@click.option("--yes", is_flag=True, help="Start without asking (required without a terminal).")
@options.region
@options.endpoint_url
@options.namespace_option(
    default=None,
    default_help=f"the function's {options.NAMESPACE_VARIABLE}, else {schema.DEFAULT_NAMESPACE}",
)
@click.option(
    "--local",
    is_flag=True,
    help="Run against the local fleet of real environments (no AWS, no cost).",
)
@click.option(
    "--over-provisioning",
    type=click.FloatRange(1.0, 10.0),
    default=1.0,
    show_default=True,
    help="--local: the fleet brings up ceil(level x factor) environments, the truth to measure.",
)
@click.option(
    "--sink",
    type=click.Choice(SINKS),
    default="cloudwatch",
    show_default=True,
    help="--local: count from the embedded CloudWatch (moto) or from the EMF lines.",
)
def experiment(  # noqa: PLR0917 (click passes every option as an argument)
    function: str | None,
    alias: str | None,
    levels: str,
    repeats: int,
    settle: float | None,
    timeout: float | None,
    cooldown: float | None,
    poll: float | None,
    output: Path | None,
    yes: bool,
    region: str | None,
    endpoint_url: str | None,
    namespace: str | None,
    local: bool,
    over_provisioning: float,
    sink: str,
) -> None:
    """Set provisioned concurrency to each level, count the environments Lambda initializes.

    For each level and repeat: put the provisioned concurrency on the alias, wait until READY,
    wait until the EnvironmentInit count (InitType provisioned-concurrency) stops growing, record
    it, remove the configuration and cool down. Provisioned concurrency is billed: the cost is
    estimated and confirmed first. The state is saved after every repeat in the output directory;
    run the same command again to continue. The alias's original configuration is restored at
    the end, on error and on Ctrl-C. With --local the same study runs on real environments on
    this machine, where the fleet over-provisions by a known --over-provisioning factor.
    """
    level_list = parse_levels(levels)
    given = {"settle": settle, "timeout": timeout, "cooldown": cooldown, "poll": poll}
    waits = {
        name: value if value is not None else (LOCAL_WAITS if local else AWS_WAITS)[name]
        for name, value in given.items()
    }
    console = Console(highlight=False)
    if local:
        if function or alias or region:
            raise UserError("--local runs the local fleet: drop --function, --alias and --region")
        if endpoint_url is not None and sink != "cloudwatch":
            raise UserError("--endpoint-url is for the cloudwatch sink; EMF lines go to the log")
        embedded_cloudwatch = sink == "cloudwatch" and endpoint_url is None
        require_local_extra("experiment --local", moto=embedded_cloudwatch)
        _run_locally(
            level_list,
            repeats,
            waits,
            output or Path("study-local"),
            over_provisioning=over_provisioning,
            sink=sink,
            endpoint_url=endpoint_url,
            namespace=namespace or schema.DEFAULT_NAMESPACE,
            console=console,
        )
        return
    if over_provisioning != 1.0 or sink != "cloudwatch":
        raise UserError("--over-provisioning and --sink are for --local runs")
    settle, timeout, cooldown, poll = (waits[n] for n in ("settle", "timeout", "cooldown", "poll"))
    if poll < 1:
        raise UserError("--poll must be at least 1 second on AWS (each read is a GetMetricData)")
    if not function or not alias:
        raise UserError("--function and --alias are required (the alias to provision)")
    resolved_region = _resolve_region(region)
    namespace = namespace or AUTO_NAMESPACE
    plan = StudyPlan(
        identity={
            "function": function,
            "alias": alias,
            "region": resolved_region,
            "namespace": namespace,
        },
        levels=level_list,
        repeats=repeats,
        settle=settle,
        ready_timeout=timeout,
        settle_timeout=timeout,
        poll_interval=poll,
        cooldown=cooldown,
    )
    directory = output or Path(f"study-{function.rsplit(':', 1)[-1]}-{alias}")
    store = StateStore(directory)
    state = store.load(plan)
    if pending_runs(plan, state):
        if not yes and not sys.stdin.isatty():
            raise UserError(
                "this run puts provisioned concurrency, which is billed; without a terminal to "
                "confirm, pass --yes"
            )
        state = _run_on_aws(
            plan,
            store,
            function=function,
            alias=alias,
            region=resolved_region,
            endpoint_url=endpoint_url,
            namespace=namespace,
            yes=yes,
            console=console,
        )
    else:
        console.print(f"every repeat is already measured in {directory}; writing the outputs")
    show_results(state, directory, console)


def _run_locally(
    levels: tuple[int, ...],
    repeats: int,
    waits: dict[str, float],
    directory: Path,
    *,
    over_provisioning: float,
    sink: str,
    endpoint_url: str | None,
    namespace: str,
    console: Console,
) -> None:
    """The study on the local fleet: moto (or EMF lines) for the count, no cost, no --yes."""
    from concurrency_observer.local.fleet import FleetConfig  # noqa: PLC0415

    config = FleetConfig(
        max_environments=LOCAL_MAX_ENVIRONMENTS, over_provisioning=over_provisioning
    )
    biggest = config.provisioned_environments(max(levels))
    if biggest > LOCAL_MAX_ENVIRONMENTS:
        raise UserError(
            f"level {max(levels)} x {over_provisioning:g} = {biggest} environments: the local "
            f"fleet runs at most {LOCAL_MAX_ENVIRONMENTS} (about 45 MB each)"
        )
    plan = StudyPlan(
        identity={
            "target": "local",
            "over_provisioning": f"{over_provisioning:g}",
            "sink": sink,
            "namespace": namespace,
        },
        levels=levels,
        repeats=repeats,
        settle=waits["settle"],
        ready_timeout=waits["timeout"],
        settle_timeout=waits["timeout"],
        poll_interval=waits["poll"],
        cooldown=waits["cooldown"],
    )
    store = StateStore(directory)
    state = store.load(plan)
    if pending_runs(plan, state):
        state = _study_on_fleet(
            plan,
            store,
            config,
            sink=sink,
            endpoint_url=endpoint_url,
            namespace=namespace,
            console=console,
        )
    else:
        console.print(f"every repeat is already measured in {directory}; writing the outputs")
    show_results(state, directory, console)


def _study_on_fleet(
    plan: StudyPlan,
    store: StateStore,
    config: Any,
    *,
    sink: str,
    endpoint_url: str | None,
    namespace: str,
    console: Console,
) -> StudyState:
    """Build the layer, start moto (cloudwatch sink) and the fleet, run the study, stop it all."""
    import tempfile  # noqa: PLC0415
    from contextlib import AbstractContextManager, nullcontext  # noqa: PLC0415

    from concurrency_observer.layer import build_layer, extract_layer  # noqa: PLC0415
    from concurrency_observer.local import rie  # noqa: PLC0415
    from concurrency_observer.local.cloudwatch import (  # noqa: PLC0415
        cloudwatch_client,
        cloudwatch_endpoint,
    )
    from concurrency_observer.local.environment_settings import (  # noqa: PLC0415
        EnvironmentSettings,
        observer_env,
    )
    from concurrency_observer.local.fleet import Fleet, lambda_environment_factory  # noqa: PLC0415
    from concurrency_observer.local.provisioning import (  # noqa: PLC0415
        EmfInitCounter,
        EmfUsageCounter,
        FleetProvisioning,
        cloudwatch_counter,
        cloudwatch_usage_counter,
        fleet_records,
    )
    from concurrency_observer.study.ports import InitCounter, UsageCounter  # noqa: PLC0415

    rie.check_host()
    rie_path = rie.rie_binary()
    with tempfile.TemporaryDirectory(prefix="concurrency-observer-experiment-") as scratch:
        built = build_layer(Path(scratch) / "layer.zip")
        layer_dir = extract_layer(built.path, Path(scratch) / "opt")
        endpoint: AbstractContextManager[str | None] = (
            cloudwatch_endpoint(endpoint_url) if sink == "cloudwatch" else nullcontext(None)
        )
        with endpoint as url:
            settings = EnvironmentSettings(
                function_name=LOCAL_FUNCTION,
                cloudwatch_endpoint=url,
                # The default (lean) profile, as on AWS: the counters read EnvironmentDelta
                # and the records (the full profile's metrics too, when a function has them).
                extra_env=observer_env(sink=sink, namespace=namespace),
            )
            factory = lambda_environment_factory(layer_dir, settings, rie_path=rie_path)
            with Fleet(factory, config) as fleet:
                target = FleetProvisioning(fleet, LOCAL_FUNCTION)
                counter: InitCounter = (
                    cloudwatch_counter(cloudwatch_client(url), LOCAL_FUNCTION, namespace)
                    if url is not None
                    else EmfInitCounter(fleet, LOCAL_FUNCTION, namespace)
                )
                usage: UsageCounter = (
                    cloudwatch_usage_counter(
                        cloudwatch_client(url), LOCAL_FUNCTION, namespace, fleet_records(fleet)
                    )
                    if url is not None
                    else EmfUsageCounter(fleet, LOCAL_FUNCTION, namespace)
                )
                source = "the EMF lines"
                if url is not None:
                    source = url if endpoint_url else "the embedded CloudWatch (moto)"
                console.print(
                    f"local study: levels {', '.join(map(str, plan.levels))} × {plan.repeats} "
                    f"repeats; the fleet brings up ceil(level × {config.over_provisioning:g}) "
                    f"provisioned environments (each initialized by a held warm-up invoke); "
                    f"counting {schema.ENVIRONMENT_INIT}, then after each removal "
                    f"{schema.ENVIRONMENT_SHUTDOWN} by {schema.FIRST_INVOKE} (ever invoked), "
                    f"from {source}"
                )
                return run_with_display(
                    lambda listener: Study(
                        plan, target, counter, store, listener, SystemClock(), usage
                    ),
                    console,
                )


def show_results(state: StudyState, directory: Path, console: Console) -> None:
    """Print the sample's table and write the CSV, JSON and PNG files."""
    from concurrency_observer.reporting.study_output import (  # noqa: PLC0415
        summary_table,
        write_study_outputs,
    )

    outputs = write_study_outputs(directory, state)
    console.print(summary_table(summarize(state.results), title="environments initialized"))
    console.print("wrote " + ", ".join(str(path) for path in outputs.all()))
