"""The fleet end to end in the two SHUTDOWN-only setups, each a few environments for a few seconds.

- Lambda Managed Instances: the RIE's LMI mode, 3 invocations at once per environment, a burst of
  6 that needs 2 environments; the extension's records go to a moto CloudWatch.
- A runtime without python3 (``simulate --runtime bash``): the layer's bash engine writes EMF
  lines, one provisioned environment (held at the bash runtime's init gate) and on-demand ones.

Both verdicts must MATCH on inits and shutdowns, per init type and in total. Under LMI the
Telemetry API's platform events give the records every invocation and class, which are compared
too; the bash engine counts them itself, and the platform's lines in the log group (either log
format) give its records their init durations.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from concurrency_observer import schema
from concurrency_observer.cli.simulate import simulate
from concurrency_observer.local.cloudwatch import LocalCloudWatch
from concurrency_observer.local.fleet import FleetConfig
from concurrency_observer.local.outcome import read_back
from concurrency_observer.local.process_session import processes_in_session
from concurrency_observer.local.setups import MODE_MANAGED_INSTANCES
from concurrency_observer.local.simulation import (
    COLD_STARTS_FELT,
    LAMBDA_INVOCATIONS,
    PEAK_LIVE,
    RECORDS,
    Simulation,
    SimulationSettings,
    managed_instances_fleet,
    unrecorded_figures,
)

pytestmark = pytest.mark.e2e

LMI = schema.INIT_MANAGED_INSTANCES
CONCURRENCY = 3


def test_managed_instances_fleet_matches_on_inits_and_shutdowns(
    rie_path: Path, layer_dir: Path, cloudwatch: LocalCloudWatch
) -> None:
    """A burst of 6 packs 3 per LMI environment; the lean metric and the records have exactly
    its inits and shutdowns, one record per environment, and (from the Telemetry API) its
    invocations and FirstInvoke classes."""
    settings = SimulationSettings(
        provisioned=0,
        rate=1.0,
        duration=5.0,
        work_ms=400,
        bursts=1,
        burst_size=2 * CONCURRENCY,
        seed=2,
        fleet=managed_instances_fleet(
            FleetConfig(max_environments=4, idle_timeout=2.0, prompt_threshold=2.0), CONCURRENCY
        ),
        namespace=f"E2E/{uuid.uuid4().hex[:12]}",
        function_name=f"e2e-lmi-{uuid.uuid4().hex[:8]}",
        mode=MODE_MANAGED_INSTANCES,
    )
    url = cloudwatch.endpoint_url
    simulation = Simulation(settings, layer_dir, url, rie_path=rie_path, logs_url=url)
    truth = simulation.run()
    assert simulation.ended_at is not None
    outcome = read_back(simulation, truth, url, url)
    recording = settings.recording()
    checks = outcome.checks

    assert (truth.failed, truth.throttled, truth.errors) == (0, 0, ())
    assert truth.peak_per_environment == CONCURRENCY  # the burst filled an environment
    assert set(truth.started) == {LMI}
    assert truth.started[LMI] >= 2  # 6 at once need a second environment
    assert truth.stopped == truth.started
    assert truth.invocations_total >= 2 * CONCURRENCY
    assert [c.to_dict() for c in checks if not c.matches] == []
    assert {(c.metric, c.init_type) for c in checks} == {
        (metric, init_type)
        for metric in (
            schema.ENVIRONMENT_INIT,
            schema.ENVIRONMENT_SHUTDOWN,
            schema.ENVIRONMENT_INVOCATIONS,
            RECORDS,
        )
        for init_type in (LMI, None)
    } | {(LAMBDA_INVOCATIONS, None), (COLD_STARTS_FELT, None)}  # no LMI init is felt
    assert {c.first_invoke for c in checks} == {None, *schema.FIRST_INVOKE_CLASSES}
    assert recording.invocations
    assert unrecorded_figures(truth, recording) == []
    assert outcome.report is not None
    assert outcome.report.invocations.total == truth.invocations_total  # platform.start/report
    assert outcome.metric_streams == 1  # EnvironmentDelta for lambda-managed-instances
    assert outcome.report.platform is not None
    most = [m.max_concurrent for m in outcome.report.platform.managed_instances]
    assert max(n for n in most if n is not None) == CONCURRENCY  # the burst, seen by the platform
    sessions = [getattr(e, "session_id", None) for e in simulation.fleet.environments()]
    assert [s for s in sessions if s is not None and processes_in_session(s)] == []


@pytest.mark.parametrize(
    ("log_format", "level"), [("text", "INFO"), ("json", "INFO"), ("json", "WARN")]
)
def test_simulate_runtime_bash_prints_a_matching_verdict(
    tmp_path: Path, rie_path: Path, log_format: str, level: str
) -> None:
    """``simulate --runtime bash``: the bash engine's EMF lines and records match every figure a
    Python run compares (inits, shutdowns, invocations, classes, the cold-start share), and the
    init durations from the platform's lines match the RIE's, in either log format; under JSON
    at WARN Lambda writes no platform line: init durations are unknown and the run says why."""
    output = tmp_path / "run.json"
    result = CliRunner().invoke(
        simulate,
        [
            "--runtime=bash",
            "--provisioned=1",
            "--over-provisioning=1",
            "--provisioned-lead=0",
            "--proactive-rate=0",
            "--pc-max-lifetime=0",
            "--rate=2",
            "--duration=4",
            "--bursts=1",
            "--burst-size=3",
            "--idle-timeout=1",
            # Far from any first invoke of this load, however slow a busy machine starts an
            # environment: no class near the threshold (issue 29), every class still compared.
            "--prompt-threshold-ms=20000",
            f"--log-format={log_format}",
            f"--system-log-level={level}",
            f"--json={output}",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "verdict: MATCH" in result.output
    document = json.loads(output.read_text())
    assert document["verdict"] == "match"
    assert document["recorded_from"] == "EMF lines + records"
    assert document["settings"]["sink"] == "emf"
    assert document["records"]["count"] == document["ground_truth"]["environments_stopped"]["total"]
    started = document["ground_truth"]["environments_started"]
    assert started["by_init_type"][schema.INIT_PROVISIONED] == 1
    assert started["by_init_type"][schema.INIT_ON_DEMAND] >= 1  # the burst scaled out
    compared = {(c["metric"], c["init_type"]) for c in document["checks"]}
    assert {
        (metric, init_type)
        for metric in (schema.ENVIRONMENT_INVOCATIONS, schema.ENVIRONMENT_SHUTDOWN, RECORDS)
        for init_type in (schema.INIT_PROVISIONED, schema.INIT_ON_DEMAND, "all")
    } <= compared
    assert (PEAK_LIVE, "all") in compared  # the records' instants, which the bash engine writes
    assert {(LAMBDA_INVOCATIONS, "all"), (COLD_STARTS_FELT, "all")} <= compared
    assert document["not_recorded"]["figures"] == []  # nothing left "not recorded"
    cold = document["report"]["cold_starts"]
    assert cold["classified"] == cold["environments"] == document["records"]["count"]
    platform = document["platform"]
    if level == "WARN":  # no platform line: unknown, and why
        assert platform is None
        assert "WARN" in document["platform_not_compared"]
        assert cold["init_duration_ms"] is None
        assert document["report"]["platform"]["platform_lines"]["streams"] == 0
    else:
        assert platform["verdict"] == "match"
        assert platform["recorded_from"] == "the platform's lines"
        felt = started["by_init_type"][schema.INIT_ON_DEMAND]  # each waited for by a request
        assert platform["init_durations"]["truth_count"] == felt
        assert cold["init_duration_ms"]["count"] == felt
        lines = document["report"]["platform"]["platform_lines"]
        assert lines["records_joined"] == document["records"]["count"]
        assert lines["disagreements"] == []
    assert document["report"]["inits"]["total"] == started["total"]


def test_managed_instances_with_the_bash_engine_counts_from_the_platforms_lines(
    tmp_path: Path, rie_path: Path
) -> None:
    """``--mode managed-instances --runtime bash``: the bash engine gets SHUTDOWN only and has no
    Telemetry API; each environment's invocations come from its platform.report events (JSON,
    the only log format there) and match; the classes are not recorded, and the run says so."""
    output = tmp_path / "run.json"
    result = CliRunner().invoke(
        simulate,
        [
            "--mode=managed-instances",
            "--runtime=bash",
            f"--max-concurrency={CONCURRENCY}",
            "--rate=4",
            "--duration=4",
            "--bursts=1",
            "--burst-size=6",
            "--idle-timeout=2",
            f"--json={output}",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "verdict: MATCH" in result.output
    document = json.loads(output.read_text())
    assert document["settings"]["log_format"] is None  # JSON, the only one on LMI
    truth = document["ground_truth"]
    checks = {(c["metric"], c["init_type"]): c for c in document["checks"]}
    invocations = checks[(schema.ENVIRONMENT_INVOCATIONS, "all")]
    assert invocations["recorded"] == invocations["truth"] == truth["invocations"]["total"]
    assert not any(c.get("first_invoke") for c in document["checks"])
    assert {f["first_invoke"] for f in document["not_recorded"]["figures"]} >= {"prompt"}
    assert "REPORT lines" in document["not_recorded"]["why"]
    assert "Managed Instances" in document["platform_not_compared"]
    lines = document["report"]["platform"]["platform_lines"]
    assert lines["records_filled"] >= 1  # the invocations, from the lines
