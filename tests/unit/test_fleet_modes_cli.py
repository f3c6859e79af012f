"""``simulate --mode managed-instances`` and ``--runtime bash``: refusals, SHUTDOWN-only verdict."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from concurrency_observer import schema
from concurrency_observer.cli.simulate import finish, simulate
from concurrency_observer.errors import UserError
from concurrency_observer.local.fleet import FleetConfig, FleetSnapshot
from concurrency_observer.local.outcome import Outcome
from concurrency_observer.local.setups import MODE_MANAGED_INSTANCES, RUNTIME_BASH
from concurrency_observer.local.simulation import (
    RECORDS,
    Recorded,
    RecordedKey,
    Recording,
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
        (["--mode", "managed-instances", "--log-format", "text"], "JSON logs only"),
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


def _truth(init_type: str, peak_per_environment: int) -> FleetSnapshot:
    """Two environments of ``init_type``, both stopped, 17 invocations, both invoked promptly."""
    return FleetSnapshot(
        started={init_type: 2},
        stopped={init_type: 2},
        invocations={init_type: 17},
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
        first_invoke={(init_type, schema.FIRST_INVOKE_PROMPT): 2},
        peak_per_environment=peak_per_environment,
    )


def _inits_and_shutdowns(init_type: str) -> Recorded:
    return {
        (schema.ENVIRONMENT_INIT, None): 2.0,
        (schema.ENVIRONMENT_INIT, init_type): 2.0,
        (schema.ENVIRONMENT_SHUTDOWN, None): 2.0,
        (schema.ENVIRONMENT_SHUTDOWN, init_type): 2.0,
        (RECORDS, None): 2.0,
        (RECORDS, init_type): 2.0,
    }


def _finish(
    settings: SimulationSettings, truth: FleetSnapshot, recorded: Recorded, tmp: Path
) -> tuple[str, dict[str, Any]]:
    """``finish`` on an outcome of these figures: the printed text and the JSON written."""
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
    document = tmp / "run.json"
    finish(outcome, out, Console(file=io.StringIO()), document)  # no Exit: a match
    text = " ".join(out.file.getvalue().split())  # type: ignore[attr-defined]
    return text, json.loads(document.read_text())


def test_a_match_without_classes_says_what_is_not_recorded(tmp_path: Path) -> None:
    """The bash engine on LMI: inits, shutdowns and invocations equal, MATCH, exit 0; the
    classes shown as not recorded, and why."""
    settings = SimulationSettings(
        provisioned=0,
        mode=MODE_MANAGED_INSTANCES,
        runtime=RUNTIME_BASH,
        sink="emf",
        fleet=managed_instances_fleet(FleetConfig(), 4),
    )
    recorded: dict[RecordedKey, float] = {
        **_inits_and_shutdowns(LMI),
        (schema.ENVIRONMENT_INVOCATIONS, None): 17.0,
        (schema.ENVIRONMENT_INVOCATIONS, LMI): 17.0,
    }
    text, written = _finish(settings, _truth(LMI, 4), recorded, tmp_path)
    assert "verdict: MATCH" in text
    assert "not compared: how each environment was used" in text
    assert "from the platform's REPORT lines" in text
    unrecorded = "│ shutdowns: prompt │ 2 │ not recorded │ - │"
    assert text.index(f"│ {LMI} │") < text.index(unrecorded) < text.index("│ all init types │")
    assert written["verdict"] == "match"
    figures = written["not_recorded"]["figures"]
    assert {f["first_invoke"] for f in figures} == set(schema.FIRST_INVOKE_CLASSES)
    assert not any(f["metric"] == schema.ENVIRONMENT_INVOCATIONS for f in figures)


def test_a_shutdown_only_match_says_what_is_not_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A setup recording SHUTDOWN only: inits and shutdowns equal, MATCH, exit 0; invocations
    and classes shown as not recorded."""
    why = "the extension registers for SHUTDOWN only"
    monkeypatch.setattr(
        SimulationSettings, "recording", lambda self: Recording(invocations=False, why=why)
    )
    on_demand = schema.INIT_ON_DEMAND
    settings = SimulationSettings(provisioned=0, runtime=RUNTIME_BASH, sink="emf")
    text, written = _finish(
        settings, _truth(on_demand, 1), _inits_and_shutdowns(on_demand), tmp_path
    )
    assert "verdict: MATCH" in text
    assert "not compared: invocations (17)" in text
    assert why in text
    # Under the on-demand heading (then again under all init types).
    unrecorded = "│ invocations │ 17 │ not recorded │ - │"
    assert text.index("│ on-demand │") < text.index(unrecorded) < text.index("│ all init types │")
    assert written["verdict"] == "match"
    figures = written["not_recorded"]["figures"]
    assert {"metric": schema.ENVIRONMENT_INVOCATIONS, "init_type": "all", "truth": 17} in [
        {k: f[k] for k in ("metric", "init_type", "truth")} for f in figures
    ]


def test_a_managed_instances_match_compares_invocations(tmp_path: Path) -> None:
    """LMI: invocations and classes from the Telemetry API are compared like any others."""
    settings = SimulationSettings(
        provisioned=0,
        mode=MODE_MANAGED_INSTANCES,
        fleet=managed_instances_fleet(FleetConfig(), 4),
    )
    recorded: dict[RecordedKey, float] = {
        **_inits_and_shutdowns(LMI),
        (schema.ENVIRONMENT_INVOCATIONS, None): 17.0,
        (schema.ENVIRONMENT_INVOCATIONS, LMI): 17.0,
        (schema.ENVIRONMENT_SHUTDOWN, LMI, schema.FIRST_INVOKE_PROMPT): 2.0,
    }
    text, written = _finish(settings, _truth(LMI, 4), recorded, tmp_path)
    assert "verdict: MATCH" in text
    assert "17 invocations" in text
    assert "not recorded" not in text
    assert "at most 4 were in one at once" in text
    assert written["ground_truth"]["peak_per_environment"] == 4
    assert written["not_recorded"] == {"why": None, "figures": []}
