"""The environment itself failing under the RIE: a function timeout (reset), a SIGKILL.

A timed-out invocation makes the RIE reset the environment as Lambda does: the extension gets
SHUTDOWN (``timeout``), then the next invocation initializes a new environment. A SIGKILL leaves
the extension no time at all: its shutdown record cannot be sent (nor, on-demand, the init record
that waits for it), and nothing else goes wrong.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from concurrency_observer import schema
from concurrency_observer.local.environment import LambdaEnvironment
from concurrency_observer.local.environment_settings import EnvironmentSettings, observer_env
from concurrency_observer.local.process_session import processes_in_session
from tests.faults.faulty_cloudwatch import ACCEPT, FaultyCloudWatch
from tests.faults.helpers import data_of, observer_lines, unique_name

pytestmark = pytest.mark.e2e


def settings_for(
    url: str, timeout_s: int = 30, init_type: str = schema.INIT_ON_DEMAND
) -> EnvironmentSettings:
    """An environment writing to ``url`` under a function name of its own."""
    return EnvironmentSettings(
        function_name=unique_name("env-faults"),
        init_type=init_type,
        cloudwatch_endpoint=url,
        timeout_s=timeout_s,
        extra_env=observer_env(namespace=unique_name("Faults"), metrics="full"),
    )


def test_function_timeout_reset_records_both_environments(rie_path: Path, layer_dir: Path) -> None:
    """A timeout resets the environment: two inits, two shutdowns (timeout, then SIGTERM)."""
    with FaultyCloudWatch(then=ACCEPT).running() as cloudwatch:
        settings = settings_for(cloudwatch.url, timeout_s=1)
        with LambdaEnvironment(layer_dir, settings, rie_path=rie_path) as environment:
            first = environment.invoke({"sleep_ms": 1})
            timed_out = environment.invoke({"sleep_ms": 3000})
            after_reset = environment.invoke({"sleep_ms": 1})
            stopped = environment.shutdown()
    assert b"timed out" in timed_out.body
    assert first.payload["pid"] != after_reset.payload["pid"]  # a new runtime: a new environment
    assert after_reset.payload["invocation"] == 1
    assert stopped.forced is False
    data = cloudwatch.accepted_data()
    assert len(data_of(data, schema.ENVIRONMENT_INIT, settings.function_name)) == 2
    reasons = sorted(
        d.dimension(schema.SHUTDOWN_REASON) or ""
        for d in data
        if d.name == schema.ENVIRONMENT_SHUTDOWN and d.dimension(schema.SHUTDOWN_REASON)
    )
    assert reasons == ["sandboxterminated", "timeout"]
    invocations = sorted(
        d.value for d in data_of(data, schema.ENVIRONMENT_INVOCATIONS, settings.function_name)
    )
    assert invocations == [1.0, 2.0]  # the timed-out invocation counted where it ran
    summaries = [line for line in observer_lines(environment.output) if "shutdown (" in line]
    assert len(summaries) == 2
    assert all("lost" not in line for line in summaries)


@pytest.mark.parametrize("init_type", [schema.INIT_PROVISIONED, schema.INIT_ON_DEMAND])
def test_sigkill_leaves_nothing_half_counted(
    rie_path: Path, layer_dir: Path, init_type: str
) -> None:
    """SIGKILL: provisioned, the init record is in and the shutdown one cannot be; on-demand,
    whose init record waits for the shutdown delivery, neither: the live sum stays balanced."""
    with FaultyCloudWatch(then=ACCEPT).running() as cloudwatch:
        settings = settings_for(cloudwatch.url, init_type=init_type)
        environment = LambdaEnvironment(layer_dir, settings, rie_path=rie_path).start()
        try:
            environment.invoke({"sleep_ms": 1})
            session = environment.session_id
            environment.kill()
        finally:
            environment.close()
    assert session is not None
    assert processes_in_session(session) == []
    data = cloudwatch.accepted_data()
    inits = len(data_of(data, schema.ENVIRONMENT_INIT, settings.function_name))
    assert inits == (1 if init_type == schema.INIT_PROVISIONED else 0)
    assert data_of(data, schema.ENVIRONMENT_SHUTDOWN, settings.function_name) == []
