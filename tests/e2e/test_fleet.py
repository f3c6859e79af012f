"""The local fleet end to end: real environments under the RIE, a moto CloudWatch, the verdict.

One run (module fixture): provisioned concurrency 1 with one spare (x2.0), recycled after 8 s, a
burst that forces on-demand scale-out, on-demand environments initialized ahead of demand (one
taken by the burst after the threshold, one never invoked), an idle timeout short enough for some
to be shut down before the end. The tests check the control plane did all that, that CloudWatch
recorded exactly its ground truth, class by class, and that no process of any environment is
left. A second test runs the ``simulate`` command itself.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from concurrency_observer import environment_record as fields
from concurrency_observer import schema
from concurrency_observer.cli.simulate import simulate
from concurrency_observer.local.cloudwatch import LocalCloudWatch
from concurrency_observer.local.fleet import FleetConfig, FleetSnapshot
from concurrency_observer.local.outcome import Outcome, read_back
from concurrency_observer.local.process_session import processes_in_session
from concurrency_observer.local.simulation import (
    COLD_STARTS_FELT,
    LAMBDA_INVOCATIONS,
    Check,
    Simulation,
    SimulationSettings,
)
from concurrency_observer.local.telemetry_emulator import INIT_HELD, rie_time
from tests.lean_metrics import environment_records

pytestmark = pytest.mark.e2e

PC = schema.INIT_PROVISIONED
RIE_INIT_REPORT = re.compile(r"INIT REPORT\(durationMs: ([0-9.]+)\)")
OD = schema.INIT_ON_DEMAND


@dataclass(frozen=True)
class FleetRun:
    """What one fleet run did, and what the report read back (metrics and records) says."""

    truth: FleetSnapshot
    checks: list[Check]
    sessions: list[int]
    outcome: Outcome
    outputs: list[str]  # each environment's whole output


@pytest.fixture(scope="module", params=[schema.METRICS_LEAN, schema.METRICS_FULL])
def fleet_run(
    request: pytest.FixtureRequest, rie_path: Path, layer_dir: Path, cloudwatch: LocalCloudWatch
) -> FleetRun:
    """Run the fleet for 12 s: seed 3 puts arrivals at 0.27 s, ..., a burst of 3 at 4.2 s, and
    inits ahead of demand at 0.61 s (3.6 s before the burst: delayed) and 10.87 s (never)."""
    settings = SimulationSettings(
        provisioned=1,
        rate=1.0,
        duration=12.0,
        work_ms=100,
        bursts=1,
        burst_size=3,
        seed=3,
        proactive_rate=0.3,
        fleet=FleetConfig(
            max_environments=10,
            idle_timeout=4.5,
            over_provisioning=2.0,
            prompt_threshold=2.0,
            threshold_margin=0.5,
            pc_max_lifetime=8.0,
        ),
        namespace=f"E2E/{uuid.uuid4().hex[:12]}",  # moto's GetMetricData ignores namespaces
        function_name=f"e2e-fleet-{uuid.uuid4().hex[:8]}",
        metrics=request.param,
        # The platform's lines in either log format, one run each.
        log_format="JSON" if request.param == schema.METRICS_FULL else "Text",
    )
    url = cloudwatch.endpoint_url
    simulation = Simulation(settings, layer_dir, url, rie_path=rie_path, logs_url=url)
    truth = simulation.run()
    assert simulation.ended_at is not None
    outcome = read_back(simulation, truth, url, url)
    sessions = [
        session
        for environment in simulation.fleet.environments()
        if (session := getattr(environment, "session_id", None)) is not None
    ]
    outputs = [getattr(e, "output", "") for e in simulation.fleet.environments()]
    return FleetRun(truth, outcome.checks, sessions, outcome, outputs)


def test_the_load_exercised_every_behaviour(fleet_run: FleetRun) -> None:
    """2 provisioned and 2 replacements, 2 ahead of demand, cold starts, nothing failed."""
    truth = fleet_run.truth
    assert truth.started.get(PC) == 4  # ceil(1 x 2.0), each replaced once after 8 s
    assert (truth.replacements, truth.recycled) == (2, 2)
    assert truth.proactive == 2
    assert truth.started.get(OD, 0) >= 3  # the 2 ahead of demand and at least one cold start
    assert truth.failed == 0
    assert truth.errors == ()
    assert truth.stopped == truth.started
    assert truth.forced_shutdowns == 0  # the stagger kept every SHUTDOWN inside its deadline


def test_every_class_occurred(fleet_run: FleetRun) -> None:
    """The spare was never invoked, nor the late init ahead of demand; the early one was late.

    On a busy machine a first invoke can come near the threshold (counted delayed, either class
    right): such an environment stands for a prompt one too.
    """
    truth = fleet_run.truth

    def prompt_or_near(init_type: str) -> int:
        near = truth.either_way.get(init_type, 0)
        return truth.first_invoke_count(init_type, schema.FIRST_INVOKE_PROMPT) + near

    assert truth.first_invoke_count(PC, schema.FIRST_INVOKE_NEVER) >= 1
    assert prompt_or_near(PC) >= 1, truth
    assert truth.first_invoke_count(OD, schema.FIRST_INVOKE_NEVER) >= 1
    assert prompt_or_near(OD) >= 1, truth
    # The early ahead-of-demand init is taken by the burst, late, when it was held 2.5 s before
    # it; on a busy machine its start can come later, routing then passes it over (its class not
    # beyond doubt) and prefers environments already invoked: it ends never invoked, beside the
    # late one (seen in the full suite at a load average of 15).
    late = truth.first_invoke_count(OD, schema.FIRST_INVOKE_DELAYED)
    assert late >= 1 or truth.first_invoke_count(OD, schema.FIRST_INVOKE_NEVER) >= 2, truth


def test_cloudwatch_counts_equal_the_ground_truth(fleet_run: FleetRun) -> None:
    """The report's inits, shutdowns, invocations, classes and records equal the truth."""
    wrong = [c.to_dict() for c in fleet_run.checks if not c.matches]
    assert wrong == []
    scopes = {(c.metric, c.init_type, c.first_invoke) for c in fleet_run.checks}
    for metric in (schema.ENVIRONMENT_INIT, schema.ENVIRONMENT_SHUTDOWN):
        assert {(metric, PC, None), (metric, OD, None), (metric, None, None)} <= scopes
    for usage in schema.FIRST_INVOKE_CLASSES:  # each class, compared per init type
        assert {(schema.ENVIRONMENT_SHUTDOWN, t, usage) for t in (PC, OD)} <= scopes


def test_the_cold_start_share_is_the_control_planes(fleet_run: FleetRun) -> None:
    """report's headline: cold starts felt (on-demand, prompt) over the invocations served, read
    from the records and the harness's AWS/Lambda Invocations, equals the control plane's."""
    report = fleet_run.outcome.report
    truth = fleet_run.truth
    assert report is not None
    assert report.platform is not None
    cold = report.platform.cold_starts
    felt = truth.first_invoke.get((OD, schema.FIRST_INVOKE_PROMPT), 0)
    near = truth.either_way.get(OD, 0)  # on a busy machine: either class right for these
    assert felt + near >= 1
    assert truth.served >= 1
    assert cold.felt is not None  # every environment's class is known here
    assert felt <= cold.felt <= felt + near
    assert cold.invocations == truth.served
    assert cold.share == cold.felt / truth.served
    compared = {c.metric: c for c in fleet_run.checks if c.init_type is None}
    assert compared[COLD_STARTS_FELT].matches
    assert compared[LAMBDA_INVOCATIONS].matches


def test_the_report_is_exact_from_the_records(fleet_run: FleetRun) -> None:
    """One record per environment; lifetimes and the peak from them, under either profile."""
    report = fleet_run.outcome.report
    truth = fleet_run.truth
    assert report is not None
    assert report.figures_source == "records"
    assert report.metric_profiles == (fleet_run.outcome.settings.metrics,)
    assert report.lifetime.count == truth.stopped_total
    assert report.lifetime_quantiles is not None
    assert report.lifetime_quantiles.source == "records"
    assert len(report.lifetime_survival) == truth.stopped_total + 1  # a step per environment
    assert sum(report.shutdowns_by_reason.values()) == truth.stopped_total
    # The control plane counts an environment from its start to the end of its stop; the
    # records from the extension's start to SHUTDOWN: inside that, so never more.
    assert 1 <= report.live_peak <= truth.peak_live


def test_held_inits_are_recorded_as_lambda_reports_them(fleet_run: FleetRun) -> None:
    """Held environments finished their init at the gate: no failed init, and each one's init
    the RIE's own report of it less the time it was held (the RIE counts that in)."""
    platform = fleet_run.outcome.platform
    assert platform is not None
    assert platform.matches, platform.to_dict()
    assert (platform.truth.failed_inits, platform.recorded_failed) == (0, 0)
    report = fleet_run.outcome.report
    assert report is not None
    assert report.platform is not None
    assert report.platform.failed_inits == 0
    waits = {
        schema.FIRST_INVOKE_NEVER: fields.LIFETIME_MS,
        schema.FIRST_INVOKE_DELAYED: fields.TIME_TO_FIRST_INVOKE_MS,
    }
    held = 0
    for output in fleet_run.outputs:
        for record in environment_records(output):
            if record.get(fields.FIRST_INVOKE) not in waits:
                continue
            held += 1
            wait = record[waits[record[fields.FIRST_INVOKE]]]
            assert record[fields.INIT_STATUS] == "success", record
            assert 0 < record[fields.INIT_DURATION_MS] < wait, record
            # The RIE's report of a held init lasts until its release or shutdown: the record's
            # init plus the time held, to the RIE's millisecond stamps (a relative bound would
            # not hold on a busy machine, where an init can take most of a short wait).
            gate = INIT_HELD.search(output)
            rie_report = RIE_INIT_REPORT.search(output)
            assert gate is not None, output[-2000:]
            assert rie_report is not None, output[-2000:]
            line_start = output.rfind("\n", 0, rie_report.start()) + 1
            ended = rie_time(output[line_start:])
            assert ended is not None
            held_ms = (ended - float(gate[1])) * 1000
            assert held_ms > 0
            total = record[fields.INIT_DURATION_MS] + held_ms
            assert abs(total - float(rie_report[1])) <= 5.0, (record, rie_report[0])
    assert held >= 3  # the PC spare and the late proactive one never invoked, one delayed


def test_the_platforms_lines_agree_with_the_telemetry_api(fleet_run: FleetRun) -> None:
    """Every record joined to its stream's platform lines (text or JSON), which agree with its
    Telemetry API fields where both speak; the waited-for cold starts' REPORTs carry the same
    init duration as the records."""
    report = fleet_run.outcome.report
    assert report is not None
    assert report.platform is not None
    lines = report.platform.lines
    assert lines is not None
    assert (lines.joined, lines.without_record) == (report.platform.environments, 0)
    assert lines.disagreements == ()
    assert report.platform.runtime_versions == {"python:rie": report.platform.environments}
    assert report.platform.with_telemetry == report.platform.environments  # not replaced


def test_the_run_created_one_metric_stream_per_init_type_under_lean(fleet_run: FleetRun) -> None:
    """Lean: one EnvironmentDelta per init type used; full: today's set, as ListMetrics sees."""
    streams = fleet_run.outcome.metric_streams
    types = len([t for t, n in fleet_run.truth.started.items() if n])
    if fleet_run.outcome.settings.metrics == schema.METRICS_LEAN:
        assert streams == types
    else:  # 6 metrics x ([FunctionName], one version, each type) + each reason + each class
        classes = len([key for key, n in fleet_run.truth.first_invoke.items() if n])
        # Usually one reason; an environment whose SIGTERM beat its SHUTDOWN event adds one.
        records = [r for output in fleet_run.outputs for r in environment_records(output)]
        reasons = len({record[fields.SHUTDOWN_REASON] for record in records})
        assert reasons >= 1
        assert streams == 6 * (2 + types) + reasons + classes


def test_no_process_is_left_behind(fleet_run: FleetRun) -> None:
    """Every environment's session is empty after the run (RIE, runtime and extension gone)."""
    assert len(fleet_run.sessions) == sum(fleet_run.truth.started.values())
    assert {s: processes_in_session(s) for s in fleet_run.sessions if processes_in_session(s)} == {}


def test_simulate_command_prints_a_matching_verdict(tmp_path: Path, rie_path: Path) -> None:
    """``simulate`` with the emf sink ends with a MATCH verdict, exit 0, and its JSON agrees."""
    output = tmp_path / "run.json"
    result = CliRunner().invoke(
        simulate,
        [
            "--sink=emf",
            "--provisioned=1",
            "--over-provisioning=1",
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
    assert document["metric_streams"] == 2  # EnvironmentDelta for on-demand and provisioned
    started = document["ground_truth"]["environments_started"]
    assert started["by_init_type"][PC] == 1
    assert document["report"]["inits"]["total"] == started["total"]
    served = document["ground_truth"]["invocations"]["served_from_load"]
    assert document["report"]["cold_starts"]["invocations"] == served  # the share is a number
    assert document["report"]["cold_starts"]["share"] is not None
