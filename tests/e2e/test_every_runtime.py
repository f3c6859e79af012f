"""The built layer on runtimes without python3 >= 3.10, under the real RIE: the bash engine.

Two setups, each one environment invoked several times then SIGTERMed (the RIE sends SHUTDOWN):

- a custom runtime in bash (``local/function/bash_runtime.sh``) with every python3 hidden from the
  environment (``/dev/null`` bind-mounted over each one on PATH, ``/var/lang/bin`` covered too);
- the usual Python runtime, with a python3 older than 3.10 first on PATH (python3.8/3.9 runtimes).

Every invoke must succeed, and the output must hold exactly one init and one shutdown EMF line
(EnvironmentDelta +1 and -1 under the default profile; today's six metrics' lines under
``CONCURRENCY_OBSERVER_METRICS=full``) and one environment record written by the bash engine,
whose invocation count, time to first invoke, class and idle time are those of the invokes sent.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from concurrency_observer import environment_record, schema
from concurrency_observer.local import readback
from concurrency_observer.local.environment import LambdaEnvironment
from concurrency_observer.local.environment_results import InvokeResult
from concurrency_observer.local.environment_settings import (
    BASH_RUNTIME,
    EnvironmentSettings,
    observer_env,
    python3_paths,
)
from tests.lean_metrics import environment_records, lean_counts

pytestmark = pytest.mark.e2e

INVOCATIONS = 3


@dataclass(frozen=True)
class Run:
    """What one environment answered and wrote."""

    namespace: str
    function_name: str
    invocations: list[InvokeResult]
    output: str
    # Epoch ms around each invoke call (the INVOKE event reaches the extension within it).
    windows: list[tuple[int, int]]


def epoch_ms() -> int:
    """The wall clock in epoch milliseconds."""
    return int(time.time() * 1000)


def run_environment(rie_path: Path, layer_dir: Path, settings: EnvironmentSettings) -> Run:
    """Start the environment, invoke it ``INVOCATIONS`` times, SIGTERM it."""
    environment = LambdaEnvironment(layer_dir, settings, name="runtime", rie_path=rie_path).start()
    results, windows = [], []
    try:
        for n in range(INVOCATIONS):
            before = epoch_ms()
            results.append(environment.invoke({"n": n}))
            windows.append((before, epoch_ms()))
        environment.shutdown()
    finally:
        environment.close()
    namespace = settings.extra_env["CONCURRENCY_OBSERVER_NAMESPACE"]
    return Run(namespace, settings.function_name, results, environment.output, windows)


def settings_for(**fields: object) -> EnvironmentSettings:
    """Settings with a function and namespace of their own; emf is what the fallback writes."""
    namespace = f"E2E/{uuid.uuid4().hex[:12]}"
    env = observer_env(namespace=namespace)
    extra = fields.pop("extra_env", {})
    assert isinstance(extra, dict)
    return EnvironmentSettings(
        function_name=f"e2e-{uuid.uuid4().hex[:10]}",
        extra_env={**env, **extra},
        **fields,  # type: ignore[arg-type]
    )


def old_python_dir() -> str:
    """The bin directory of a python3 older than 3.10 (pyenv); the test fails without one."""
    for minor in (9, 8):
        found = sorted(Path("~/.pyenv/versions").expanduser().glob(f"3.{minor}.*/bin/python3"))
        if found:
            return str(found[0].parent)
    pytest.fail("no python3.8 or 3.9 under ~/.pyenv/versions: this test needs one")


@pytest.fixture(scope="module")
def no_python_run(rie_path: Path, layer_dir: Path) -> Run:
    """The bash runtime with every python3 hidden."""
    search_path = EnvironmentSettings().environ()["PATH"]
    settings = settings_for(
        runtime_command=("/bin/bash", str(BASH_RUNTIME)),
        hidden_paths=python3_paths(search_path),
    )
    return run_environment(rie_path, layer_dir, settings)


@pytest.fixture(scope="module")
def old_python_run(rie_path: Path, layer_dir: Path) -> Run:
    """The Python runtime with python3 < 3.10 first on PATH."""
    search_path = EnvironmentSettings().environ()["PATH"]
    old = old_python_dir()
    # As on those runtimes, Lambda's own /var/lang/bin/python3 is the old one too.
    settings = settings_for(
        extra_env={"PATH": f"{old}:{search_path}"}, lambda_python=str(Path(old) / "python3")
    )
    return run_environment(rie_path, layer_dir, settings)


@pytest.fixture(scope="module")
def no_python_full_run(rie_path: Path, layer_dir: Path) -> Run:
    """The bash runtime with every python3 hidden, under the full metric profile."""
    search_path = EnvironmentSettings().environ()["PATH"]
    settings = settings_for(
        runtime_command=("/bin/bash", str(BASH_RUNTIME)),
        hidden_paths=python3_paths(search_path),
        extra_env={"CONCURRENCY_OBSERVER_METRICS": "full"},
    )
    return run_environment(rie_path, layer_dir, settings)


@pytest.fixture(params=["no-python", "old-python"])
def run(request: pytest.FixtureRequest) -> Run:
    """Each setup's run."""
    fixture = {"no-python": "no_python_run", "old-python": "old_python_run"}[request.param]
    found = request.getfixturevalue(fixture)
    assert isinstance(found, Run)
    return found


def test_every_invoke_succeeds(run: Run) -> None:
    """Every invocation answered 200 with the function's own payload, no Extension.Crash."""
    assert [r.status for r in run.invocations] == [200] * INVOCATIONS, run.output
    assert all(r.function_error is None for r in run.invocations), run.output
    assert "Extension.Crash" not in run.output


def test_lean_init_and_shutdown_and_one_record(run: Run) -> None:
    """Default profile: EnvironmentDelta +1 then -1, one stream; one record by the bash engine."""
    documents = [
        d
        for d in readback.emf_documents(run.output)
        if d.get(schema.FUNCTION_NAME) == run.function_name
    ]
    assert [d.get(schema.ENVIRONMENT_DELTA) for d in documents] == [1, -1], run.output
    summaries = readback.read_emf(run.output, run.namespace)
    assert lean_counts(summaries, run.function_name) == {schema.INIT_ON_DEMAND: (1, 1)}
    assert len(summaries) == 1
    (record,) = environment_records(run.output, run.function_name)
    assert (record["engine"], record["metrics"]) == ("bash", "lean")
    assert set(record) == set(environment_record.BASH_FIELDS)
    assert record["shutdownReason"] == "sandboxterminated"
    assert record["lifetimeMs"] > 0
    assert record["initTime"] < record["shutdownTime"]
    assert record["initType"] == schema.INIT_ON_DEMAND
    assert "bash engine" in run.output


def test_the_bash_engine_counts_what_was_sent(run: Run) -> None:
    """Invocations, time to first invoke, class and idle time match the invokes sent."""
    (record,) = environment_records(run.output, run.function_name)
    assert (record["invocations"], record["firstInvoke"]) == (INVOCATIONS, "prompt")
    # The first INVOKE, as the engine timed it, fell within the first invoke call; the last
    # within the last: 1 ms either side for the rounding of two clocks.
    first_seen = record["initTime"] + record["timeToFirstInvokeMs"]
    last_seen = record["shutdownTime"] - record["idleMs"]
    (first_start, first_end), (last_start, last_end) = run.windows[0], run.windows[-1]
    assert first_start - 1 <= first_seen <= first_end + 1, (record, run.windows)
    assert last_start - 1 <= last_seen <= last_end + 1, (record, run.windows)
    assert 0 <= record["idleMs"] < record["lifetimeMs"]


def test_full_profile_init_and_shutdown_record(no_python_full_run: Run) -> None:
    """full: exactly one init and one shutdown EMF document of today's set, and the record."""
    run = no_python_full_run
    documents = [
        d
        for d in readback.emf_documents(run.output)
        if d.get(schema.FUNCTION_NAME) == run.function_name
    ]
    (record,) = environment_records(run.output, run.function_name)
    assert (record["engine"], record["metrics"]) == ("bash", "full")
    inits = [d for d in documents if schema.ENVIRONMENT_INIT in d]
    shutdowns = [d for d in documents if schema.ENVIRONMENT_SHUTDOWN in d]
    assert (len(inits), len(shutdowns), len(documents)) == (1, 1, 2), run.output
    assert shutdowns[0][schema.SHUTDOWN_REASON] == "sandboxterminated"
    assert shutdowns[0][schema.ENVIRONMENT_LIFETIME] >= 0
    assert shutdowns[0][schema.ENVIRONMENT_INVOCATIONS] == INVOCATIONS
    assert shutdowns[0][schema.FIRST_INVOKE] == schema.FIRST_INVOKE_PROMPT
    assert "bash engine" in run.output
    summaries = readback.read_emf(run.output, run.namespace)
    init = readback.find(summaries, schema.ENVIRONMENT_INIT, FunctionName=run.function_name)
    assert init is not None
    assert (init.samples, init.total) == (1, 1.0)


def test_no_python_setup_really_had_no_python(no_python_run: Run) -> None:
    """The runtime answered from bash, and the launcher found no python3 to run."""
    assert all(r.payload.get("runtime") == "bash" for r in no_python_run.invocations)
    assert "Registered" not in no_python_run.output  # the Python extension never started
