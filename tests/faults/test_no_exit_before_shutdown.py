"""Every path on which the extension used to exit before SHUTDOWN, under the real RIE.

Lambda treats an extension that exits before SHUTDOWN as ``Extension.Crash``: the init fails, or
every invoke does. Each test breaks one thing between the unchanged extension and the RIE (a
proxy failing register or ``/event/next``, a bug planted in a copy of the layer) and asserts that
the function's invokes still succeed, and what the records then are. Bad configuration is covered
by ``test_bad_configuration.py``; a missing ``AWS_LAMBDA_RUNTIME_API`` (which the RIE always sets)
by ``tests/unit/extension/test_process.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from concurrency_observer import schema
from concurrency_observer.local import readback
from concurrency_observer.local.environment import LambdaEnvironment
from concurrency_observer.local.environment_results import InvokeResult
from concurrency_observer.local.environment_settings import EnvironmentSettings, observer_env
from tests.faults.api_proxy import (
    NEXT,
    REGISTER,
    REGISTER_INVOKE,
    ExtensionsApiProxy,
    patch_module,
    wrapped_layer,
)
from tests.faults.helpers import observer_lines, unique_name

pytestmark = pytest.mark.e2e

INVOCATIONS = 3


def invoke_all(
    rie_path: Path, layer: Path, settings: EnvironmentSettings | None = None
) -> tuple[list[InvokeResult], list[dict[str, Any]], str, EnvironmentSettings]:
    """Invoke one environment ``INVOCATIONS`` times, stop it; results, EMF documents, output."""
    settings = settings or EnvironmentSettings(
        function_name=unique_name("no-exit"),
        extra_env=observer_env(
            sink="emf", namespace=unique_name("NoExit"), log_level="DEBUG", metrics="full"
        ),
    )
    with LambdaEnvironment(layer, settings, name="no-exit", rie_path=rie_path) as environment:
        results = [environment.invoke({"sleep_ms": 1}) for _ in range(INVOCATIONS)]
        environment.shutdown()
    output = environment.output
    documents = [
        d
        for d in readback.emf_documents(output)
        if d.get(schema.FUNCTION_NAME) == settings.function_name
    ]
    return results, documents, output, settings


def assert_invokes_succeeded(results: list[InvokeResult], output: str) -> None:
    """Every invoke answered by the function, and the RIE never saw the extension crash."""
    assert all(r.status == 200 and r.function_error is None for r in results), output[-3000:]
    assert "Extension.Crash" not in output


def records(documents: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The init and the shutdown documents."""
    inits = [d for d in documents if schema.ENVIRONMENT_INIT in d]
    shutdowns = [d for d in documents if schema.ENVIRONMENT_SHUTDOWN in d]
    return inits, shutdowns


def test_register_failing_is_retried(rie_path: Path, layer_dir: Path, tmp_path: Path) -> None:
    """register answered 500 twice: retried, registered, invokes succeed, both records."""
    with ExtensionsApiProxy(tmp_path, fail={REGISTER: [500, 503]}).running() as proxy:
        layer = wrapped_layer(layer_dir, tmp_path / "opt", proxy)
        results, documents, output, _ = invoke_all(rie_path, layer)
    assert_invokes_succeeded(results, output)
    assert proxy.failed == [REGISTER_INVOKE, REGISTER_INVOKE]
    inits, shutdowns = records(documents)
    assert (len(inits), len(shutdowns)) == (1, 1)
    assert shutdowns[0][schema.ENVIRONMENT_INVOCATIONS] == INVOCATIONS


def test_register_for_invoke_refused_falls_back_to_shutdown_only(
    rie_path: Path, layer_dir: Path, tmp_path: Path
) -> None:
    """register with INVOKE always refused: after three tries, SHUTDOWN alone; both records."""
    with ExtensionsApiProxy(tmp_path, fail={REGISTER_INVOKE: [0]}).running() as proxy:
        layer = wrapped_layer(layer_dir, tmp_path / "opt", proxy)
        results, documents, output, _ = invoke_all(rie_path, layer)
    assert_invokes_succeeded(results, output)
    assert proxy.failed == [REGISTER_INVOKE] * 3
    assert any("registering for SHUTDOWN" in line for line in observer_lines(output))
    inits, shutdowns = records(documents)
    assert (len(inits), len(shutdowns)) == (1, 1)
    assert schema.ENVIRONMENT_INVOCATIONS not in shutdowns[0]  # registered for SHUTDOWN only


def test_next_failing_is_polled_again(rie_path: Path, layer_dir: Path, tmp_path: Path) -> None:
    """/event/next answered 500 three times in a row: polled again, invokes succeed, records."""
    with ExtensionsApiProxy(tmp_path, fail={NEXT: [500, 502, 500]}).running() as proxy:
        layer = wrapped_layer(layer_dir, tmp_path / "opt", proxy)
        results, documents, output, _ = invoke_all(rie_path, layer)
    assert_invokes_succeeded(results, output)
    assert proxy.failed == [NEXT] * 3
    inits, shutdowns = records(documents)
    assert (len(inits), len(shutdowns)) == (1, 1)
    assert shutdowns[0][schema.SHUTDOWN_REASON] == "sandboxterminated"


def test_a_bug_in_the_event_loop_serves_shutdown_only(
    rie_path: Path, layer_dir: Path, tmp_path: Path
) -> None:
    """A bug in the Python engine before its first /event/next: one line, and the shell front
    door serves the events as the bash engine; invokes succeed, both records, every invoke."""
    with ExtensionsApiProxy(tmp_path).running() as proxy:
        layer = wrapped_layer(layer_dir, tmp_path / "opt", proxy)
        patch_module(
            layer,
            "extension.event_loop",
            "def events_to_register(config):\n    raise RuntimeError('planted bug')",
        )
        results, documents, output, _ = invoke_all(rie_path, layer)
    assert_invokes_succeeded(results, output)
    lines = observer_lines(output)
    assert any("planted bug; the shell front door goes on" in line for line in lines)
    inits, shutdowns = records(documents)
    assert (len(inits), len(shutdowns)) == (1, 1)
    assert shutdowns[0][schema.ENVIRONMENT_INVOCATIONS] == INVOCATIONS  # the bash engine's


def test_a_bug_in_the_records_keeps_the_environment(
    rie_path: Path, layer_dir: Path, tmp_path: Path
) -> None:
    """A bug building every record: nothing recorded, a line each time; invokes succeed."""
    with ExtensionsApiProxy(tmp_path).running() as proxy:
        layer = wrapped_layer(layer_dir, tmp_path / "opt", proxy)
        patch_module(
            layer,
            "extension.lifecycle",
            "def build_init_record(*args, **kwargs):\n    raise RuntimeError('planted bug')",
        )
        results, documents, output, _ = invoke_all(rie_path, layer)
    assert_invokes_succeeded(results, output)
    assert documents == []
    lines = [line for line in observer_lines(output) if "planted bug" in line]
    assert len(lines) == 2  # at init, and again at shutdown


def test_a_bug_in_the_configuration_serves_shutdown_only(
    rie_path: Path, layer_dir: Path, tmp_path: Path
) -> None:
    """A bug reading the Python engine's configuration: the bash engine serves and records."""
    with ExtensionsApiProxy(tmp_path).running() as proxy:
        layer = wrapped_layer(layer_dir, tmp_path / "opt", proxy)
        patch_module(
            layer,
            "extension.config",
            "def _broken(cls, environ):\n    raise RuntimeError('planted bug')\n"
            "Config.from_environ = classmethod(_broken)",
        )
        results, documents, output, _ = invoke_all(rie_path, layer)
    assert_invokes_succeeded(results, output)
    assert proxy.forwarded.count(REGISTER_INVOKE) == 1  # the front door's, once
    inits, shutdowns = records(documents)
    assert (len(inits), len(shutdowns)) == (1, 1)
    assert shutdowns[0][schema.ENVIRONMENT_INVOCATIONS] == INVOCATIONS
    assert any("the shell front door goes on" in line for line in observer_lines(output))
