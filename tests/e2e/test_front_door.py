"""The shell front door under the real RIE: it registers, then Python takes over, or does not.

The built layer, a Python runtime (awslambdaric) and /var/lang/bin/python3 as Lambda's Python
runtimes have it. In every case each invoke succeeds on one runtime, nothing crashes, and the
environment has exactly one init and one shutdown EMF line and one environment record:

- the hand-off: the Python engine serves the events under the front door's registration (it
  never registers itself: no "Registering..." line at DEBUG) and writes the record;
- /var/lang/bin/python3 killed (SIGKILL) as it starts, failing at the import, or killed after its
  init record and right before its first /event/next: the bash engine carries on with the same
  registration and counts every invoke (after the last, the init record is Python's);
- Lambda Managed Instances with the bash engine: SHUTDOWN only, and every invoke answered.
"""

from __future__ import annotations

import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from concurrency_observer import schema
from concurrency_observer.local import readback
from concurrency_observer.local.environment import LambdaEnvironment
from concurrency_observer.local.environment_settings import EnvironmentSettings, observer_env
from tests.lean_metrics import environment_records
from tests.unit.test_fallback import FAULTY_PYTHON

pytestmark = pytest.mark.e2e

INVOCATIONS = 3


def settings_for(**fields: object) -> EnvironmentSettings:
    """A function and namespace of their own, the emf sink, DEBUG lines; ``fields`` on top."""
    extra = fields.pop("extra_env", {})
    assert isinstance(extra, dict)
    env = observer_env(sink="emf", namespace=f"E2E/{uuid.uuid4().hex[:12]}", log_level="DEBUG")
    return EnvironmentSettings(
        function_name=f"e2e-{uuid.uuid4().hex[:10]}",
        extra_env={**env, **extra},
        **fields,  # type: ignore[arg-type]
    )


def run_invoked(rie_path: Path, layer_dir: Path, settings: EnvironmentSettings) -> str:
    """Invoke ``INVOCATIONS`` times, shut down; checks every answer; the output."""
    with LambdaEnvironment(layer_dir, settings, name="front", rie_path=rie_path) as environment:
        results = [environment.invoke({"n": n}) for n in range(INVOCATIONS)]
        stopped = environment.shutdown()
    output = environment.output
    assert [r.status for r in results] == [200] * INVOCATIONS, output[-3000:]
    assert all(r.function_error is None for r in results), output[-3000:]
    assert len({r.payload["pid"] for r in results}) == 1  # one runtime: no reset
    assert "Extension.Crash" not in output
    assert stopped.forced is False, output[-3000:]
    return output


def one_init_one_shutdown(output: str, function_name: str) -> dict[str, object]:
    """Exactly one +1 and one -1 line of the function, and its one record (returned)."""
    documents = [
        d for d in readback.emf_documents(output) if d.get(schema.FUNCTION_NAME) == function_name
    ]
    assert [d.get(schema.ENVIRONMENT_DELTA) for d in documents] == [1, -1], output[-3000:]
    (record,) = environment_records(output, function_name)
    return record


def test_the_python_engine_serves_under_the_front_doors_registration(
    rie_path: Path, layer_dir: Path
) -> None:
    """Python takes the registration: it never registers, and its record counts every invoke."""
    settings = settings_for()
    output = run_invoked(rie_path, layer_dir, settings)
    record = one_init_one_shutdown(output, settings.function_name)
    assert (record["engine"], record["invocations"]) == ("python", INVOCATIONS)
    assert "Registered with ID" in output  # the Python engine's DEBUG line, with the shell's id
    assert "Registering..." not in output  # ...which it never asked for itself
    assert "bash engine" not in output


@pytest.fixture
def faulty_python(tmp_path: Path) -> str:
    """A python3 that runs the real bootstrap.py with the fault $FAULT (see FAULTY_PYTHON)."""
    path = tmp_path / "python3"
    path.write_text(FAULTY_PYTHON)
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize(
    ("fault", "init_type", "python_init"),
    [
        ("start", schema.INIT_ON_DEMAND, False),
        ("import", schema.INIT_ON_DEMAND, False),
        # On-demand, Python keeps its init record for shutdown and does not claim it.
        ("owning", schema.INIT_ON_DEMAND, False),
        ("owning", schema.INIT_PROVISIONED, True),
    ],
)
def test_the_shell_carries_on_when_python_dies_before_its_first_next(
    rie_path: Path,
    layer_dir: Path,
    faulty_python: str,
    *,
    fault: str,
    init_type: str,
    python_init: bool,
) -> None:
    """Python killed or failing before /next: the bash engine serves; one init, one shutdown."""
    search_path = EnvironmentSettings().environ()["PATH"]
    # The same python3 first on PATH too: the one tried after /var/lang's has the fault as well.
    settings = settings_for(
        init_type=init_type,
        lambda_python=faulty_python,
        extra_env={
            "FAULT": fault,
            "REAL_PYTHON": sys.executable,
            "PATH": f"{Path(faulty_python).parent}:{search_path}",
        },
    )
    output = run_invoked(rie_path, layer_dir, settings)
    record = one_init_one_shutdown(output, settings.function_name)
    assert (record["engine"], record["invocations"]) == ("bash", INVOCATIONS)
    assert record["firstInvoke"] == schema.FIRST_INVOKE_PROMPT
    assert ("whose init record stands" in output) == python_init, output[-3000:]
    assert "bash engine goes on with the same registration" in output or fault == "import"


def test_managed_instances_with_the_bash_engine(rie_path: Path, layer_dir: Path) -> None:
    """LMI, the bash engine: SHUTDOWN only (no INVOKE refused), every invoke answered, records."""
    settings = EnvironmentSettings(
        function_name=f"e2e-{uuid.uuid4().hex[:10]}",
        max_concurrency=2,
        extra_env={
            **observer_env(sink="emf", namespace=f"E2E/{uuid.uuid4().hex[:12]}"),
            "CONCURRENCY_OBSERVER_ENGINE": "bash",
        },
    )
    with (
        LambdaEnvironment(layer_dir, settings, name="lmi", rie_path=rie_path) as environment,
        ThreadPoolExecutor(2) as pool,
    ):
        results = list(pool.map(environment.invoke, [{"sleep_ms": 100}] * 4))
        stopped = environment.shutdown()
    output = environment.output
    assert [r.status for r in results] == [200] * 4, output[-3000:]
    assert stopped.forced is False
    assert "Extension.Crash" not in output
    assert "ErrorInvalidEventType" not in output  # it never asked for INVOKE
    record = one_init_one_shutdown(output, settings.function_name)
    assert (record["engine"], record["initType"]) == ("bash", schema.INIT_MANAGED_INSTANCES)
    assert "invocations" not in record  # SHUTDOWN only: not counted, so absent
