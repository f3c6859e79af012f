"""The verdict at scale: at least 150 real environments a run, under three seeds, must MATCH.

Each run is bursts of 60, 4.2 s apart, on a 0.5 s idle timeout, so most of a burst is served by
new environments, about 40 of them started at once: the extensions' inits stretch to seconds on 2
cores, cold starts land on either side of the 2 s threshold (either class is right for those whose
interval straddles it), and some extensions get no answer to their Telemetry subscription in time.
The verdict must hold through all of it: every figure equal, or within the bounds the control
plane knows it to, and the platform's account equal for every init whose extension subscribed.
"""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

import pytest

from concurrency_observer import environment_record as fields
from concurrency_observer.local import ports
from concurrency_observer.local.cloudwatch import LocalCloudWatch
from concurrency_observer.local.environment import LambdaEnvironment
from concurrency_observer.local.environment_settings import EnvironmentSettings
from concurrency_observer.local.fleet import FleetConfig
from concurrency_observer.local.outcome import read_back
from concurrency_observer.local.platform_truth import platform_truth
from concurrency_observer.local.simulation import PEAK_LIVE, Simulation, SimulationSettings
from tests.lean_metrics import environment_records

pytestmark = pytest.mark.e2e

MIN_ENVIRONMENTS = 150


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_scaled_load_matches(
    seed: int, rie_path: Path, layer_dir: Path, cloudwatch: LocalCloudWatch
) -> None:
    """At least 150 environments (4 bursts of 60, 15 invocations a second for 24 s): MATCH."""
    settings = SimulationSettings(
        provisioned=4,
        rate=15.0,
        duration=24.0,
        work_ms=300,
        bursts=4,
        burst_size=60,
        seed=seed,
        proactive_rate=0.3,
        provisioned_lead=3.0,
        fleet=FleetConfig(
            max_environments=120,
            idle_timeout=0.5,
            over_provisioning=1.5,
            prompt_threshold=2.0,
            threshold_margin=0.5,
            pc_max_lifetime=8.0,
        ),
        namespace=f"E2E/{uuid.uuid4().hex[:12]}",
        function_name=f"e2e-scale-{uuid.uuid4().hex[:8]}",
    )
    url = cloudwatch.endpoint_url
    simulation = Simulation(settings, layer_dir, url, rie_path=rie_path, logs_url=url)
    truth = simulation.run()
    outcome = read_back(simulation, truth, url, url)
    detail = json.dumps(
        {
            "wrong": [c.to_dict() for c in outcome.checks if not c.matches],
            "platform": None if outcome.platform is None else outcome.platform.to_dict(),
            "errors": list(truth.errors[:5]),
        },
        default=str,
    )
    assert truth.started_total >= MIN_ENVIRONMENTS, detail
    assert truth.stopped == truth.started, detail
    assert truth.forced_shutdowns == 0, detail
    assert outcome.matches, detail
    assert outcome.platform is not None
    assert outcome.platform.matches, detail
    # The peak was compared on the extensions' own instants, not left out.
    assert [c.metric for c in outcome.checks].count(PEAK_LIVE) == 1, detail


def test_a_retried_start_keeps_the_telemetry_of_its_init(
    rie_path: Path, layer_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first RIE finds its port taken; the second one's init still reaches the record."""
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind((ports.LOOPBACK, 0))
    taken.listen(1)
    picks = iter([taken.getsockname()[1]])
    real_free_port = ports.free_port
    monkeypatch.setattr(ports, "free_port", lambda: next(picks, None) or real_free_port())
    settings = EnvironmentSettings(
        function_name=f"e2e-retry-{uuid.uuid4().hex[:8]}",
        extra_env={"CONCURRENCY_OBSERVER_SINK": "emf"},
        emulate_telemetry=True,
    )
    try:
        with LambdaEnvironment(layer_dir, settings, rie_path=rie_path) as environment:
            assert environment.invoke({}).status == 200
            environment.shutdown()
    finally:
        taken.close()
    assert environment.start_attempts == 2
    output = environment.output
    (record,) = environment_records(output, settings.function_name)
    (truth,) = platform_truth([output]).init_durations_ms
    assert abs(float(record[fields.INIT_DURATION_MS]) - truth) <= 1.0, output[-2000:]
