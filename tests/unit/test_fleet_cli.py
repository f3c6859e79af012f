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
from concurrency_observer.cli.simulate import Outcome, finish, simulate
from concurrency_observer.errors import EnvironmentUnfit, UserError
from concurrency_observer.local.fleet import FleetSnapshot
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
