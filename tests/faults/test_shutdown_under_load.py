"""Shutdown under load: 20 real environments SIGTERMed close together, every record delivered.

The simulate fleet brings up 20 provisioned environments (bounded parallel starts, each
initialized with its first invoke held, as it does for provisioned concurrency: never invoked),
then closes: SIGTERMs 50 ms apart with all
20 shutdowns allowed to overlap, so 20 extensions deliver to one moto CloudWatch at about the same
time on a 2-core machine, each within the RIE's 2 s SHUTDOWN deadline.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from concurrency_observer import schema
from concurrency_observer.local import readback
from concurrency_observer.local.cloudwatch import LocalCloudWatch
from concurrency_observer.local.environment import LambdaEnvironment
from concurrency_observer.local.environment_settings import EnvironmentSettings, observer_env
from concurrency_observer.local.fleet import Fleet, FleetConfig, lambda_environment_factory
from tests.faults.helpers import RIE_SHUTDOWN_DEADLINE_S, observer_lines, unique_name

pytestmark = pytest.mark.e2e

ENVIRONMENTS = 20


def test_twenty_environments_shut_down_together_all_recorded(
    rie_path: Path, layer_dir: Path, cloudwatch: LocalCloudWatch
) -> None:
    """20 overlapping shutdowns: 20 shutdown records in CloudWatch, none lost, none forced."""
    function_name, namespace = unique_name("load"), unique_name("Faults")
    settings = EnvironmentSettings(
        function_name=function_name,
        cloudwatch_endpoint=cloudwatch.endpoint_url,
        extra_env=observer_env(namespace=namespace, metrics="full"),
    )
    config = FleetConfig(
        max_environments=ENVIRONMENTS,
        idle_timeout=600.0,
        parallel_starts=4,
        shutdown_parallel=ENVIRONMENTS,  # all 20 shutdowns may overlap...
        shutdown_gap=0.05,  # ...their SIGTERMs 50 ms apart, as the fleet staggers them
    )
    since = datetime.now(timezone.utc)
    fleet = Fleet(lambda_environment_factory(layer_dir, settings, rie_path=rie_path), config)
    try:
        assert fleet.provision(ENVIRONMENTS) == ENVIRONMENTS
    finally:
        fleet.close()
    truth = fleet.snapshot()
    assert truth.started == {schema.INIT_PROVISIONED: ENVIRONMENTS}, truth.errors
    assert truth.stopped == {schema.INIT_PROVISIONED: ENVIRONMENTS}
    assert truth.forced_shutdowns == 0
    environments = [e for e in fleet.environments() if isinstance(e, LambdaEnvironment)]
    assert len(environments) == ENVIRONMENTS
    for environment in environments:
        assert environment.shutdown_result is not None
        assert environment.shutdown_result.duration_s < RIE_SHUTDOWN_DEADLINE_S
        *_, summary = observer_lines(environment.output)
        assert " delivered " in summary
        assert "lost" not in summary, summary

    summaries = readback.read_cloudwatch(cloudwatch.client(), namespace, since)
    expected = readback.GroundTruth(
        inits=ENVIRONMENTS, shutdowns=ENVIRONMENTS, invocations=truth.invocations_total
    )
    assert expected.discrepancies(summaries, function_name) == []
    shutdowns = readback.find(summaries, schema.ENVIRONMENT_SHUTDOWN, FunctionName=function_name)
    assert shutdowns is not None
    assert shutdowns.samples == ENVIRONMENTS  # one datum per environment: none doubled
