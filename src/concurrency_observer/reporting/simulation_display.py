"""What ``simulate`` shows while it runs: the plan, a live status table, the environments' logs.

``run_with_display(simulation, console)`` runs a ``local.simulation.Simulation`` in a thread under
a rich live display of ``status_table``; Ctrl-C or SIGTERM stop it cleanly (every environment is
shut down first) and end in ``SimulationInterrupted``. ``print_plan`` says what the run will do
before it starts; ``print_logs`` and ``print_log_paths`` show the environments' output after it.
What is printed once the run is over is ``simulation_output.py``'s.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from concurrency_observer import schema
from concurrency_observer.errors import SimulationInterrupted
from concurrency_observer.local.setups import RUNTIME_BASH

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from concurrency_observer.local.fleet import FleetSnapshot
    from concurrency_observer.local.simulation import (
        Simulation,
        SimulationSettings,
        SimulationStatus,
    )

DISPLAY_INTERVAL_S = 0.25


def print_plan(console: Console, settings: SimulationSettings) -> None:
    """What the run will do: the function, the load, the fleet, the mode and what is recorded."""
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


def run_with_display(simulation: Simulation, console: Console) -> FleetSnapshot:
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
        while not done.wait(DISPLAY_INTERVAL_S):
            live.update(status_table(simulation.status()))

    worker = threading.Thread(target=work, name="simulation")
    interrupted = False
    with Live(status_table(simulation.status()), console=console, refresh_per_second=4) as live:
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
        live.update(status_table(simulation.status()))
    worker.join()
    if not console.is_terminal:
        console.print()  # a live display that is not a terminal's ends without a newline
    if failure:
        raise failure[0]
    if interrupted:
        raise SimulationInterrupted("interrupted; every environment was shut down")
    return simulation.fleet.snapshot()


def status_table(status: SimulationStatus) -> Table:
    """One frame of the live display: phase, invocations, environments, lifecycle, first invokes."""
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


def print_logs(console: Console, simulation: Simulation) -> None:
    """Every environment's log, one after the other (``--verbose``)."""
    for environment in simulation.fleet.environments():
        console.rule(f"environment {environment.name}")
        console.print(getattr(environment, "output", ""), markup=False, highlight=False, end="")
    console.rule()


def print_log_paths(console: Console, simulation: Simulation) -> None:
    """Where each environment's kept log is (``--keep-logs``)."""
    for environment in simulation.fleet.environments():
        work_dir = getattr(environment, "work_dir", None)
        if work_dir is not None:
            console.print(f"environment {environment.name} log kept: {work_dir / 'output.log'}")
