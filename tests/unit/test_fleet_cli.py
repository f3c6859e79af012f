"""``simulate`` (the fleet command): refusals before anything starts, and the verdict's exit."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from rich.console import Console

from concurrency_observer import schema
from concurrency_observer.cli.simulate import finish, simulate
from concurrency_observer.errors import EnvironmentUnfit, UserError
from concurrency_observer.local.fleet import FleetSnapshot
from concurrency_observer.local.outcome import Outcome
from concurrency_observer.local.simulation import Recorded, SimulationSettings, verdict_checks

OD = schema.INIT_ON_DEMAND


def test_an_unusable_rie_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A machine without a usable RIE gets EnvironmentUnfit naming the cause, not a traceback."""
    not_a_binary = tmp_path / "aws-lambda-rie"
    not_a_binary.write_text("")
    monkeypatch.setenv("CONCURRENCY_OBSERVER_RIE", str(not_a_binary))
    result = CliRunner().invoke(simulate, ["--duration", "1"])
    assert isinstance(result.exception, EnvironmentUnfit)
    assert "CONCURRENCY_OBSERVER_RIE" in str(result.exception)


def test_endpoint_url_needs_the_cloudwatch_sink() -> None:
    """--endpoint-url with the emf sink is refused: EMF lines go to the log, not to an endpoint."""
    result = CliRunner().invoke(simulate, ["--sink", "emf", "--endpoint-url", "http://127.0.0.1:1"])
    assert isinstance(result.exception, UserError)
    assert "cloudwatch sink" in str(result.exception)


def test_provisioned_environments_must_fit_the_maximum() -> None:
    """3 provisioned x 2 = 6 environments exceed --max-environments 5: refused before starting."""
    result = CliRunner().invoke(
        simulate, ["--provisioned", "3", "--over-provisioning", "2", "--max-environments", "5"]
    )
    assert isinstance(result.exception, UserError)
    assert "= 6 environments, more than --max-environments 5" in str(result.exception)


def test_a_mismatch_is_printed_and_exits_1(tmp_path: Path) -> None:
    """One figure off: the verdict names it, the JSON says mismatch, and the exit code is 1."""
    truth = FleetSnapshot(
        started={OD: 2},
        stopped={OD: 2},
        invocations={OD: 5},
        live={},
        starting=0,
        busy=0,
        warmups=0,
        served=5,
        throttled=0,
        failed=0,
        idle_shutdowns=1,
        forced_shutdowns=0,
        peak_live=2,
    )
    recorded: Recorded = {
        (schema.ENVIRONMENT_INIT, None): 2.0,
        (schema.ENVIRONMENT_INIT, OD): 2.0,
        (schema.ENVIRONMENT_SHUTDOWN, None): 1.0,
        (schema.ENVIRONMENT_SHUTDOWN, OD): 1.0,
        (schema.ENVIRONMENT_INVOCATIONS, None): 5.0,
        (schema.ENVIRONMENT_INVOCATIONS, OD): 5.0,
    }
    now = datetime.now(timezone.utc)
    outcome = Outcome(
        settings=SimulationSettings(),
        truth=truth,
        source="CloudWatch",
        checks=verdict_checks(truth, recorded),
        report=None,
        report_error="no data",
        started_at=now,
        ended_at=now,
    )
    out = Console(file=io.StringIO(), width=200)
    document = tmp_path / "run.json"
    with pytest.raises(click.exceptions.Exit) as stopped:
        finish(outcome, out, Console(file=io.StringIO()), document)
    assert stopped.value.exit_code == 1
    printed = out.file.getvalue()  # type: ignore[attr-defined]
    assert "verdict: MISMATCH" in printed
    assert "EnvironmentShutdown (on-demand): recorded 1, truth 2" in printed
    assert json.loads(document.read_text())["verdict"] == "mismatch"


def test_every_class_is_printed_per_init_type_and_a_class_mismatch_is_named() -> None:
    """The classes table shows each count; a FirstInvoke class off is named in the verdict."""
    pc = schema.INIT_PROVISIONED
    truth = FleetSnapshot(
        started={OD: 4, pc: 3},
        stopped={OD: 4, pc: 3},
        invocations={OD: 6, pc: 9},
        live={},
        starting=0,
        busy=0,
        warmups=3,
        served=12,
        throttled=0,
        failed=0,
        idle_shutdowns=4,
        forced_shutdowns=0,
        peak_live=6,
        first_invoke={
            (OD, schema.FIRST_INVOKE_NEVER): 1,
            (OD, schema.FIRST_INVOKE_PROMPT): 2,
            (OD, schema.FIRST_INVOKE_DELAYED): 1,
            (pc, schema.FIRST_INVOKE_NEVER): 1,
            (pc, schema.FIRST_INVOKE_DELAYED): 2,
        },
        proactive=2,
        replacements=1,
        recycled=1,
    )
    shutdown = schema.ENVIRONMENT_SHUTDOWN
    recorded: Recorded = {
        (schema.ENVIRONMENT_INIT, None): 7.0,
        (schema.ENVIRONMENT_INIT, OD): 4.0,
        (schema.ENVIRONMENT_INIT, pc): 3.0,
        (shutdown, None): 7.0,
        (shutdown, OD): 4.0,
        (shutdown, pc): 3.0,
        (schema.ENVIRONMENT_INVOCATIONS, None): 15.0,
        (schema.ENVIRONMENT_INVOCATIONS, OD): 6.0,
        (schema.ENVIRONMENT_INVOCATIONS, pc): 9.0,
        (shutdown, OD, schema.FIRST_INVOKE_NEVER): 1.0,
        (shutdown, OD, schema.FIRST_INVOKE_PROMPT): 3.0,  # one delayed recorded as prompt
        (shutdown, pc, schema.FIRST_INVOKE_NEVER): 1.0,
        (shutdown, pc, schema.FIRST_INVOKE_DELAYED): 2.0,
    }
    now = datetime.now(timezone.utc)
    outcome = Outcome(
        settings=SimulationSettings(),
        truth=truth,
        source="CloudWatch",
        checks=verdict_checks(truth, recorded),
        report=None,
        report_error="no data",
        started_at=now,
        ended_at=now,
    )
    out = Console(file=io.StringIO(), width=200)
    with pytest.raises(click.exceptions.Exit):
        finish(outcome, out, Console(file=io.StringIO()), None)
    lines = out.file.getvalue().splitlines()  # type: ignore[attr-defined]

    def cells(label: str) -> list[str]:
        line = next(line for line in lines if label in line)
        return [c.strip() for c in line.split("│")[2:-1]]

    # columns: on-demand, provisioned-concurrency, all
    assert cells("created (inits)") == ["4", "3", "7"]
    assert cells("never invoked") == ["1", "1", "2"]
    assert cells("prompt: 1st invoke <= 10s") == ["2", "0", "2"]
    assert cells("delayed: 1st invoke > 10s") == ["1", "2", "3"]
    assert cells("initialized ahead of demand") == ["2", "-", "2"]
    assert cells("replacements (recycled)") == ["-", "1", "1"]
    text = " ".join(" ".join(lines).split())  # the verdict wraps
    verdict = text[text.index("verdict: MISMATCH") :]
    assert "EnvironmentShutdown (on-demand, FirstInvoke prompt): recorded 3, truth 2" in verdict
    assert "EnvironmentShutdown (on-demand, FirstInvoke delayed): recorded 0, truth 1" in verdict


def test_a_sub_second_recycling_lifetime_is_refused() -> None:
    """--pc-max-lifetime 0.5 would recycle without pause: refused in one line before starting."""
    result = CliRunner().invoke(simulate, ["--pc-max-lifetime", "0.5"])
    assert isinstance(result.exception, UserError)
    assert "--pc-max-lifetime must be at least 1 second" in str(result.exception)


def _stopped(
    started: dict[str, int],
    invocations: dict[str, int],
    *,
    served: int,
    first_invoke: dict[tuple[str, str], int],
) -> FleetSnapshot:
    """A finished run's truth: every environment started has stopped."""
    return FleetSnapshot(
        started=started,
        stopped=started,
        invocations=invocations,
        live={},
        starting=0,
        busy=0,
        warmups=sum(invocations.values()) - served,
        served=served,
        throttled=0,
        failed=0,
        idle_shutdowns=0,
        forced_shutdowns=0,
        peak_live=sum(started.values()),
        first_invoke=first_invoke,
    )


def test_the_verdict_table_reads_whole_at_80_columns() -> None:
    """Not on a terminal (80 columns): every figure's name whole, under its init type's heading."""
    from concurrency_observer.figures.platform import ColdStarts
    from concurrency_observer.local.simulation import cold_start_checks
    from concurrency_observer.reporting.simulation_output import truth_table

    pc, lmi = schema.INIT_PROVISIONED, schema.INIT_MANAGED_INSTANCES
    truth = _stopped(
        {OD: 2, pc: 1},
        {OD: 5, pc: 3},
        served=7,
        first_invoke={(OD, schema.FIRST_INVOKE_PROMPT): 2, (pc, schema.FIRST_INVOKE_NEVER): 1},
    )
    recorded: Recorded = {(schema.ENVIRONMENT_INIT, lmi): 1.0}  # not expected: its own rows
    checks = verdict_checks(truth, recorded)
    checks += cold_start_checks(truth, ColdStarts(2, 7.0, None, {}))
    now = datetime.now(timezone.utc)
    outcome = Outcome(
        settings=SimulationSettings(),
        truth=truth,
        source="CloudWatch + records",
        checks=checks,
        report=None,
        report_error="no data",
        started_at=now,
        ended_at=now,
    )
    out = Console(file=io.StringIO(), width=80)
    out.print(truth_table(outcome))
    printed = out.file.getvalue()  # type: ignore[attr-defined]
    assert "…" not in printed
    assert max(len(line) for line in printed.splitlines()) <= 80
    headings = [lmi, OD, pc, "all init types"]  # init types sorted, then the totals
    at = [printed.index(f"│ {heading} ") for heading in headings]
    assert at == sorted(at)
    for label in ("inits (started)", "shutdowns: never invoked", "invocations (AWS/Lambda)"):
        assert f"│   {label} " in printed
    assert "cold starts felt" in printed[at[-1] :]


def test_a_match_names_the_cold_start_share_when_it_was_compared() -> None:
    """The verdict's sentence gives felt of invocations; without those checks it says nothing."""
    from concurrency_observer.figures.platform import ColdStarts
    from concurrency_observer.local.simulation import Recording, cold_start_checks
    from concurrency_observer.reporting.simulation_output import cold_start_clause

    truth = _stopped({OD: 2}, {OD: 8}, served=8, first_invoke={(OD, schema.FIRST_INVOKE_PROMPT): 2})
    cold = ColdStarts(2, 8.0, None, {})
    clause = cold_start_clause(cold_start_checks(truth, cold))
    assert clause == ", and the cold-start share (2 of 8 invocations, 25.00%)"
    shutdown_only = cold_start_checks(truth, cold, Recording(invocations=False))
    assert cold_start_clause(shutdown_only) == ""
