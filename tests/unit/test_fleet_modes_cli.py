"""``simulate --mode managed-instances`` and ``--runtime bash``: refusals, SHUTDOWN-only verdict."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from concurrency_observer import schema
from concurrency_observer.cli.simulate import finish, simulate
from concurrency_observer.errors import UserError
from concurrency_observer.local.fleet import FleetConfig, FleetSnapshot
from concurrency_observer.local.outcome import Outcome
from concurrency_observer.local.setups import MODE_MANAGED_INSTANCES
from concurrency_observer.local.simulation import (
    RECORDS,
    Recorded,
    SimulationSettings,
    managed_instances_fleet,
    unrecorded_figures,
    verdict_checks,
)

LMI = schema.INIT_MANAGED_INSTANCES


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--max-concurrency", "8"], "--max-concurrency is for --mode managed-instances"),
        (["--mode", "managed-instances", "--provisioned", "2"], "no provisioned concurrency"),
        (["--mode", "managed-instances", "--pc-max-lifetime", "9"], "no provisioned concurrency"),
        (["--mode", "managed-instances", "--runtime", "bash"], "drop --runtime"),
        (["--runtime", "bash", "--sink", "cloudwatch"], "use --sink emf"),
        (["--runtime", "bash", "--endpoint-url", "http://127.0.0.1:1"], "writes EMF lines"),
    ],
)
def test_options_a_setup_cannot_honour_are_refused(arguments: list[str], message: str) -> None:
    """Each impossible combination is one clear error before anything starts."""
    result = CliRunner().invoke(simulate, arguments)
    assert isinstance(result.exception, UserError)
    assert message in str(result.exception)


def test_help_explains_the_mode_and_the_runtime() -> None:
    """--help names both setups and what they do not record."""
    result = CliRunner().invoke(simulate, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--mode [standard|managed-instances]" in text
    assert "--runtime [python|bash]" in text
    assert "SHUTDOWN only" in text


def test_a_managed_instances_match_says_what_is_not_recorded(tmp_path: Path) -> None:
    """Inits and shutdowns equal: MATCH, exit 0; invocations and classes shown as not recorded."""
    truth = FleetSnapshot(
        started={LMI: 2},
        stopped={LMI: 2},
        invocations={LMI: 17},
        live={},
        starting=0,
        busy=0,
        warmups=0,
        served=17,
        throttled=0,
        failed=0,
        idle_shutdowns=1,
        forced_shutdowns=0,
        peak_live=2,
        first_invoke={(LMI, schema.FIRST_INVOKE_PROMPT): 2},
        peak_per_environment=4,
    )
    recorded: Recorded = {
        (schema.ENVIRONMENT_INIT, None): 2.0,
        (schema.ENVIRONMENT_INIT, LMI): 2.0,
        (schema.ENVIRONMENT_SHUTDOWN, None): 2.0,
        (schema.ENVIRONMENT_SHUTDOWN, LMI): 2.0,
        (RECORDS, None): 2.0,
        (RECORDS, LMI): 2.0,
    }
    settings = SimulationSettings(
        provisioned=0,
        mode=MODE_MANAGED_INSTANCES,
        fleet=managed_instances_fleet(FleetConfig(), 4),
    )
    recording = settings.recording()
    now = datetime.now(timezone.utc)
    outcome = Outcome(
        settings=settings,
        truth=truth,
        source="CloudWatch",
        checks=verdict_checks(truth, recorded, recording),
        report=None,
        report_error="no data",
        started_at=now,
        ended_at=now,
        unrecorded=unrecorded_figures(truth, recording),
    )
    out = Console(file=io.StringIO(), width=200)
    document = tmp_path / "run.json"
    finish(outcome, out, Console(file=io.StringIO()), document)  # no Exit: a match
    text = " ".join(out.file.getvalue().split())  # type: ignore[attr-defined]
    assert "verdict: MATCH" in text
    assert "not compared: invocations (17)" in text
    assert "Lambda Managed Instances lets an extension register for SHUTDOWN only" in text
    assert "at most 4 were in one at once" in text
    assert "│ invocations │ lambda-managed-instances │ 17 │ not recorded │ - │" in text
    written = json.loads(document.read_text())
    assert written["verdict"] == "match"
    assert written["ground_truth"]["peak_per_environment"] == 4
    figures = written["not_recorded"]["figures"]
    assert {"metric": schema.ENVIRONMENT_INVOCATIONS, "init_type": "all", "truth": 17} in [
        {k: f[k] for k in ("metric", "init_type", "truth")} for f in figures
    ]
