"""Two ``simulate`` runs against one external moto, two function names: each its own truth.

Real environments under the RIE for function A, then for function B, both writing to the same moto
server (one CloudWatch, one CloudWatch Logs, one namespace). Read back after both have run, each
report must equal its own control plane's ground truth, class by class, and count only its own
records. Then B's real records are echoed into A's log group (as a function that prints what it
receives would): A's report must not move, and its notes say how many records were B's.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from concurrency_observer.aws.records import default_log_group
from concurrency_observer.local.cloudwatch import LocalCloudWatch, client_for
from concurrency_observer.local.fleet import FleetConfig, FleetSnapshot
from concurrency_observer.local.outcome import Outcome, read_back
from concurrency_observer.local.simulation import Simulation, SimulationSettings

pytestmark = pytest.mark.e2e


def _settings(function_name: str, namespace: str, seed: int) -> SimulationSettings:
    """A short run: a burst over a slow trickle, idle environments shut down before the end."""
    return SimulationSettings(
        provisioned=1,
        rate=2.0,
        duration=4.0,
        work_ms=100,
        bursts=1,
        burst_size=3,
        seed=seed,
        fleet=FleetConfig(max_environments=6, idle_timeout=1.0, over_provisioning=1.0),
        namespace=namespace,
        function_name=function_name,
    )


def _assert_its_own_truth(outcome: Outcome, truth: FleetSnapshot, others: int) -> None:
    mismatched = [check for check in outcome.checks if not check.matches]
    assert mismatched == [], mismatched
    report = outcome.report
    assert report is not None
    assert report.inits_total == truth.started_total
    assert report.invocations.total == truth.invocations_total
    assert report.records_read is not None
    assert report.records_read.other_functions == others
    assert report.records_read.refused == {}
    said = [n for n in report.notes if "belong to other functions" in n]
    assert len(said) == (1 if others else 0)


def test_two_functions_on_one_moto_each_report_their_own_truth(
    rie_path: Path, layer_dir: Path, cloudwatch: LocalCloudWatch
) -> None:
    """Each report equals its own run's truth; B's records echoed into A's group change nothing."""
    namespace = f"E2E/{uuid.uuid4().hex[:12]}"
    url = cloudwatch.endpoint_url
    runs: list[tuple[Simulation, FleetSnapshot]] = []
    for index, name in enumerate(("a", "b")):
        settings = _settings(f"e2e-two-{name}-{uuid.uuid4().hex[:6]}", namespace, seed=index + 4)
        simulation = Simulation(settings, layer_dir, url, rie_path=rie_path, logs_url=url)
        runs.append((simulation, simulation.run()))
    outcomes = [read_back(simulation, truth, url, url) for simulation, truth in runs]
    for outcome, (_, truth) in zip(outcomes, runs, strict=True):
        _assert_its_own_truth(outcome, truth, others=0)

    (first, first_truth), (second, _) = runs
    logs = client_for("logs", url)
    b_group = default_log_group(second.settings.function_name)
    b_lines = [
        event["message"]
        for page in logs.get_paginator("filter_log_events").paginate(
            logGroupName=b_group, filterPattern='"concurrencyObserver"'
        )
        for event in page["events"]
    ]
    assert b_lines
    a_group = default_log_group(first.settings.function_name)
    stream = "echo-of-b"
    logs.create_log_stream(logGroupName=a_group, logStreamName=stream)
    stamp = int(first.started_at.timestamp() * 1000) + 1000
    logs.put_log_events(
        logGroupName=a_group,
        logStreamName=stream,
        logEvents=[{"timestamp": stamp, "message": f"received: {line}"} for line in b_lines],
    )
    again = read_back(first, first_truth, url, url)
    _assert_its_own_truth(again, first_truth, others=len(b_lines))
    assert again.report is not None
    assert outcomes[0].report is not None
    assert again.report.observer_bill == outcomes[0].report.observer_bill
