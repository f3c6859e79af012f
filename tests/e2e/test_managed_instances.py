"""The built layer under the RIE's Lambda Managed Instances mode, invoked concurrently.

LMI refuses INVOKE to external extensions; an extension that insists exits and takes the
environment down (every invoke then fails). Ours registers for SHUTDOWN only: every invoke is
answered, and the environment yields exactly one init and one shutdown record (EMF: the RIE gives
LMI runtimes empty credentials, so the emf sink is what works there).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from concurrency_observer import schema
from concurrency_observer.local import readback
from concurrency_observer.local.environment import LambdaEnvironment
from concurrency_observer.local.environment_results import InvokeResult
from concurrency_observer.local.environment_settings import EnvironmentSettings, observer_env
from tests.faults.api_proxy import wrapped_layer
from tests.faults.helpers import observer_lines, unique_name
from tests.lean_metrics import environment_records

pytestmark = pytest.mark.e2e

CONCURRENCY = 4
ROUNDS = 3


def lmi_settings(namespace: str, metrics: str | None = None) -> EnvironmentSettings:
    """An LMI environment of ``CONCURRENCY`` with the emf sink under ``namespace``."""
    return EnvironmentSettings(
        function_name=unique_name("lmi"),
        max_concurrency=CONCURRENCY,
        extra_env=observer_env(sink="emf", namespace=namespace, metrics=metrics),
    )


def test_lmi_concurrent_invokes_one_init_one_shutdown(rie_path: Path, layer_dir: Path) -> None:
    """4 invokes at once, 3 rounds: all answered, some concurrently; one init, one shutdown."""
    settings = lmi_settings(unique_name("Lmi"))
    results: list[InvokeResult] = []
    with (
        LambdaEnvironment(layer_dir, settings, name="lmi", rie_path=rie_path) as environment,
        ThreadPoolExecutor(CONCURRENCY) as pool,
    ):
        for _round in range(ROUNDS):
            batch = [{"sleep_ms": 300} for _ in range(CONCURRENCY)]
            results += pool.map(environment.invoke, batch)
        stopped = environment.shutdown()
    output = environment.output
    assert [r.status for r in results] == [200] * CONCURRENCY * ROUNDS, output[-2000:]
    assert all(r.function_error is None for r in results)
    assert max(r.payload["concurrent"] for r in results) > 1  # really served at once
    assert len({r.payload["pid"] for r in results}) == 1  # by one environment
    assert stopped.forced is False
    assert "Extension.Crash" not in output

    documents = [
        d
        for d in readback.emf_documents(output)
        if d.get(schema.FUNCTION_NAME) == settings.function_name
    ]
    # The default profile: +1 at init, -1 at shutdown, under the LMI init type.
    assert [d[schema.ENVIRONMENT_DELTA] for d in documents] == [1, -1], observer_lines(output)
    assert {d[schema.INIT_TYPE] for d in documents} == {schema.INIT_MANAGED_INSTANCES}
    (record,) = environment_records(output, settings.function_name)
    assert record["initType"] == schema.INIT_MANAGED_INSTANCES
    assert record["shutdownReason"] == "spindown"
    # LMI sends extensions no INVOKE; the Telemetry API's platform.start/report count them.
    assert record["invocations"] == CONCURRENCY * ROUNDS
    assert record["firstInvoke"] == schema.FIRST_INVOKE_PROMPT
    assert record["lifetimeMs"] > 0
    # Idle from the last invocation's end (3 rounds of 300 ms after the first start), not from init.
    invoking_ms = ROUNDS * 300
    latest_end = record["lifetimeMs"] - record["timeToFirstInvokeMs"] - invoking_ms
    assert 0 <= record["idleMs"] <= latest_end + 1  # 1 ms: the two clocks' rounding


def test_invoke_refused_by_the_rie_registers_again(
    rie_path: Path, layer_dir: Path, tmp_path: Path
) -> None:
    """Told it is on-demand under LMI, it asks for INVOKE, is refused, registers for SHUTDOWN."""
    # The wrapper overrides the init type the RIE sets, so the first register includes INVOKE.
    layer = wrapped_layer(
        layer_dir, tmp_path / "opt", None, AWS_LAMBDA_INITIALIZATION_TYPE="on-demand"
    )
    settings = lmi_settings(unique_name("Lmi"), metrics="full")
    with (
        LambdaEnvironment(layer, settings, name="lmi", rie_path=rie_path) as environment,
        ThreadPoolExecutor(CONCURRENCY) as pool,
    ):
        results = list(pool.map(environment.invoke, [{"sleep_ms": 100}] * CONCURRENCY))
        environment.shutdown()
    output = environment.output
    assert [r.status for r in results] == [200] * CONCURRENCY, output[-2000:]
    assert "ErrorInvalidEventType" in output  # the RIE did refuse INVOKE
    assert "Extension.Crash" not in output
    documents = readback.emf_documents(output)
    assert [schema.ENVIRONMENT_INIT in d for d in documents] == [True, False]
    assert schema.ENVIRONMENT_INVOCATIONS not in documents[1]
