"""The fleet end to end in the two SHUTDOWN-only setups, each a few environments for a few seconds.

- Lambda Managed Instances: the RIE's LMI mode, 3 invocations at once per environment, a burst of
  6 that needs 2 environments; the extension's records go to a moto CloudWatch.
- A runtime without python3 (``simulate --runtime bash``): the layer's bash fallback writes EMF
  lines, one provisioned environment (held at the bash runtime's init gate) and on-demand ones.

Both verdicts must MATCH on inits and shutdowns, per init type and in total. Under LMI the
Telemetry API's platform events give the records every invocation and class, which are compared
too; the bash fallback lists them as not recorded.
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
from concurrency_observer.local.environment import processes_in_session
from concurrency_observer.local.fleet import FleetConfig
from concurrency_observer.local.outcome import read_back
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


def test_simulate_runtime_bash_prints_a_matching_verdict(tmp_path: Path, rie_path: Path) -> None:
    """``simulate --runtime bash``: the fallback's EMF lines match the inits and shutdowns of
    both init types; invocations are listed as not recorded; exit 0."""
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
    assert compared == {
        (metric, init_type)
        for metric in (schema.ENVIRONMENT_INIT, schema.ENVIRONMENT_SHUTDOWN, RECORDS)
        for init_type in (schema.INIT_PROVISIONED, schema.INIT_ON_DEMAND, "all")
    } | {
        (LAMBDA_INVOCATIONS, "all"),  # Lambda's own metric, whatever the extension
        (PEAK_LIVE, "all"),  # the records' instants, which the fallback writes too
    }
    assert "bash fallback" in document["not_recorded"]["why"]
    not_recorded = {f["metric"] for f in document["not_recorded"]["figures"]}
    assert not_recorded == {
        schema.ENVIRONMENT_INVOCATIONS,
        schema.ENVIRONMENT_SHUTDOWN,
        COLD_STARTS_FELT,
    }
    assert document["report"]["inits"]["total"] == started["total"]
