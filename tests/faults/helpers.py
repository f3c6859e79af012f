"""What the fault tests share: running one environment through its phases, reading its log."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from concurrency_observer import schema
from concurrency_observer.layer import EXTENSION_NAME
from concurrency_observer.local.environment import LambdaEnvironment
from concurrency_observer.local.environment_results import InvokeResult, ShutdownResult
from concurrency_observer.local.environment_settings import EnvironmentSettings, observer_env
from tests.faults.faulty_cloudwatch import Datum

LOG_PREFIX = "[concurrency-observer]"
PROCESS_FUNCTION_NAME = "orders"  # the function name extension processes run under
# The RIE's SHUTDOWN deadline after SIGTERM (docs/design.md, "The local harness").
RIE_SHUTDOWN_DEADLINE_S = 2.0


def unique_name(prefix: str) -> str:
    """A function name or namespace no other test uses (moto shares state across tests)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def observer_lines(output: str) -> list[str]:
    """The extension's own log lines in an environment's output."""
    return [line for line in output.splitlines() if line.startswith(LOG_PREFIX)]


@dataclass(frozen=True)
class EnvironmentRun:
    """One environment's life: wall-clock marks (epoch s), invocations, shutdown, output."""

    function_name: str
    namespace: str
    started: float  # just before the first invoke (the RIE initializes on it)
    first_invoke_done: float
    shutdown_began: float
    shutdown_done: float
    invocations: list[InvokeResult]
    shutdown: ShutdownResult
    init_duration_ms: float | None
    output: str

    @property
    def lines(self) -> list[str]:
        """The extension's log lines."""
        return observer_lines(self.output)

    def invocations_succeeded(self) -> bool:
        """Every invocation answered 200 without a function error, in order, by one runtime."""
        payloads = [r.payload for r in self.invocations]
        return (
            all(r.status == 200 and r.function_error is None for r in self.invocations)
            and [p["invocation"] for p in payloads] == list(range(1, len(payloads) + 1))
            and len({p["pid"] for p in payloads}) == 1
        )


def run_environment(
    rie_path: Path,
    layer_dir: Path,
    *,
    cloudwatch_url: str | None,
    extra_env: Mapping[str, str] | None = None,
    invocations: int = 3,
    before_shutdown: Callable[[], None] | None = None,
) -> EnvironmentRun:
    """Start one environment, invoke it ``invocations`` times, then SIGTERM it and wait."""
    function_name, namespace = unique_name("faults"), unique_name("Faults")
    settings = EnvironmentSettings(
        function_name=function_name,
        cloudwatch_endpoint=cloudwatch_url,
        extra_env={**observer_env(namespace=namespace, metrics="full"), **(extra_env or {})},
    )
    environment = LambdaEnvironment(layer_dir, settings, name="faults", rie_path=rie_path)
    with environment:
        started = time.time()
        results = [environment.invoke({"sleep_ms": 1})]
        first_invoke_done = time.time()
        results += [environment.invoke({"sleep_ms": 1}) for _ in range(invocations - 1)]
        if before_shutdown is not None:
            before_shutdown()
        shutdown_began = time.time()
        stopped = environment.shutdown()
        shutdown_done = time.time()
    return EnvironmentRun(
        function_name,
        namespace,
        started,
        first_invoke_done,
        shutdown_began,
        shutdown_done,
        results,
        stopped,
        environment.init_duration_ms(),
        environment.output,
    )


def data_of(data: list[Datum], metric: str, function_name: str) -> list[Datum]:
    """The data of ``metric`` in the ``[FunctionName]`` dimension set (one per record)."""
    return [
        d
        for d in data
        if d.name == metric and d.dimensions == ((schema.FUNCTION_NAME, function_name),)
    ]


def expected_data_count(invoked: bool = True) -> int:
    """How many data one init and one shutdown record make (one per metric and set)."""
    base = len(schema.BASE_DIMENSION_SETS)
    init = base
    # Shutdown, Lifetime, IdleTime, Invocations (+ TimeToFirstInvoke when invoked), and the
    # extra ShutdownReason and FirstInvoke sets of EnvironmentShutdown (INVOKE events counted).
    shutdown = base * (5 if invoked else 4) + 2
    return init + shutdown


@dataclass(frozen=True)
class ExtensionExit:
    """How an extension process ended: exit code, output, and when (epoch s) it was seen gone."""

    code: int
    stdout: str
    stderr: str
    exited_at: float

    @property
    def lines(self) -> list[str]:
        """The extension's log lines."""
        return observer_lines(self.stderr)


def extension_environ(
    api_address: str, cloudwatch_url: str | None = None, **settings: str
) -> dict[str, str]:
    """A Lambda-like environment for an extension process: the cloudwatch sink if given a URL."""
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": api_address,
        "AWS_LAMBDA_FUNCTION_NAME": PROCESS_FUNCTION_NAME,
        "CONCURRENCY_OBSERVER_SINK": "emf",
        # The full metric profile: these tests count its data (test_lean_faults: the default).
        "CONCURRENCY_OBSERVER_METRICS": "full",
    }
    if cloudwatch_url is not None:
        environ |= {
            "CONCURRENCY_OBSERVER_SINK": "cloudwatch",
            "AWS_ENDPOINT_URL_CLOUDWATCH": cloudwatch_url,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "AKIAFAULTTESTS",
            "AWS_SECRET_ACCESS_KEY": "fault-tests-secret",
        }
    return {**environ, **settings}


def start_extension(layer_dir: Path, environ: Mapping[str, str]) -> subprocess.Popen[str]:
    """The extension from the built layer, run as its launcher runs it (``python3 -I -S -B``)."""
    bootstrap = layer_dir / EXTENSION_NAME / "bootstrap.py"
    return subprocess.Popen(
        [sys.executable, "-I", "-S", "-B", str(bootstrap), EXTENSION_NAME],
        env=dict(environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 20.0) -> ExtensionExit:
    """Wait for the extension to exit (killed after ``timeout``) and collect its output."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    return ExtensionExit(process.returncode, stdout, stderr, time.time())
