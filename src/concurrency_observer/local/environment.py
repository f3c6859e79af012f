"""ONE real Lambda execution environment on this machine: the RIE, a Python runtime, the layer.

How it runs (docs/local.md has the why)::

    unshare --mount --pid --fork --kill-child   (plus --map-root-user when not root)
      sh: mount --bind LAYER_DIR /opt (read-only), then exec
        aws-lambda-rie --runtime-api-address 127.0.0.1:P1
                       --runtime-interface-emulator-address 127.0.0.1:P2
          <this venv's python> -m awslambdaric handler.handler     (cwd = LAMBDA_TASK_ROOT)
          /opt/extensions/*                                         (started by the RIE at init)

The RIE is PID 1 of its own PID namespace, so when it dies the kernel kills every process it
started, and killing ``unshare`` kills the RIE (``--kill-child``): nothing outlives an environment,
whatever the runtime or an extension does. The environment sees only the variables built by
``EnvironmentSettings.environ()`` (dummy credentials, never the host's).

Use::

    settings = EnvironmentSettings(init_type="provisioned-concurrency")
    with LambdaEnvironment(layer_dir, settings) as env:
        first = env.invoke({"sleep_ms": 0})   # the RIE initializes lazily: this one includes init
        env.invoke()
        result = env.shutdown()              # SIGTERM: extensions get SHUTDOWN (SandboxTerminated)
    print(env.output)                        # RIE, runtime and extension logs, stdout and stderr

One invocation at a time per environment: the RIE exits if it gets two at once, so concurrent
``invoke`` calls wait for each other (``busy`` tells a router to pick another environment).

Lambda Managed Instances (``EnvironmentSettings(max_concurrency=N)``): the RIE's own LMI mode,
switched on by ``AWS_LAMBDA_MAX_CONCURRENCY``. It initializes at start, not at the first invoke,
serves up to N invocations at once (``invoke`` calls then run concurrently), and sets
``AWS_LAMBDA_INITIALIZATION_TYPE=lambda-managed-instances`` itself. Its runtime must be
``/var/task/bootstrap`` and runs, like the extensions, as an unprivileged user that cannot read
root's home (this venv): so ``/var`` is a tmpfs of the environment's mount namespace, the
standard-library ``function/concurrent_bootstrap.py`` is mounted as ``/var/task/bootstrap``, and
PATH leads to the system's ``python3``. The extensions get the AWS credentials of the RIE's own
environment (these dummy ones; none without them), so both sinks work (docs/local.md).
Every started environment is also killed at interpreter exit (``atexit``) if its owner did not
shut it down.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Final

from concurrency_observer import schema
from concurrency_observer.errors import UserError
from concurrency_observer.local import ports, rie
from concurrency_observer.local.environment_results import InvokeResult, ShutdownResult
from concurrency_observer.local.environment_settings import (
    LAMBDA_PYTHON_DIR,
    TASK_ROOT,
    EnvironmentSettings,
)
from concurrency_observer.local.extension_timeline import ExtensionTimeline, extension_timeline
from concurrency_observer.local.managed_instances import lmi_task_dir, post_when_a_worker_is_idle
from concurrency_observer.local.process_session import only_child, processes_in_session
from concurrency_observer.local.sandbox_mounts import (
    MOUNT_AND_EXEC,
    MOUNT_LMI_AND_EXEC,
    SH_IS_BASH,
    hide_commands,
    lambda_python_commands,
)
from concurrency_observer.local.telemetry_emulator import TELEMETRY_API_VARIABLE, TelemetryEmulator

INVOKE_PATH: Final = "/2015-03-31/functions/function/invocations"
# The init gate of the function (function/handler.py): while this file is missing, the runtime's
# init waits, so the first invoke is not handed to the extensions yet.
INIT_GATE_VARIABLE: Final = "CONCURRENCY_OBSERVER_LOCAL_INIT_GATE"
INIT_GATE_FILE: Final = "init-gate"
INIT_HELD_SUFFIX: Final = ".held"  # the handler creates gate + this once it waits at the gate
HANDLER: Final = "handler.handler"
OUTPUT_FILE: Final = "output.log"
_START_ATTEMPTS: Final = 3
_POLL_S: Final = 0.01
_KILL_WAIT_S: Final = 5.0
_INIT_REPORT: Final = re.compile(r"INIT REPORT\(durationMs: ([0-9.]+)\)")
EXTENSION_NAME: Final = "concurrency-observer"  # the layer's extension, as the RIE names it


class EnvironmentFailed(UserError):
    """A local environment did not start, answer or stop as expected; the message says which."""


class LambdaEnvironment:
    """One Lambda execution environment under the RIE; see the module docstring."""

    def __init__(
        self,
        layer_dir: Path | None,
        settings: EnvironmentSettings | None = None,
        *,
        name: str = "env",
        rie_path: Path | None = None,
        keep_work_dir: bool = False,
        init_gate: bool = False,
    ) -> None:
        """``layer_dir`` is an extracted layer (``None``: an empty ``/opt``, no extension).

        ``init_gate`` makes ``hold_init`` possible: the runtime's init waits at a gate file
        (function/handler.py) until ``release_init`` (or any ordinary ``invoke``) opens it.
        """
        self.name = name
        self.init_gate = init_gate
        self._gate_open = False
        self._held: threading.Thread | None = None
        self._held_result: InvokeResult | EnvironmentFailed | None = None
        self.settings = settings or EnvironmentSettings()
        self.keep_work_dir = keep_work_dir
        self._layer_dir = layer_dir
        self._rie_path = rie_path
        self._process: subprocess.Popen[bytes] | None = None
        self._rie_pid: int | None = None
        self._ports: tuple[int, int] | None = None
        self._work_dir: Path | None = None
        self._final_output: str | None = None
        self._lock = threading.Lock()
        self._invoke_lock = threading.Lock()
        self._in_flight = 0  # invocations posted and not answered (Managed Instances mode)
        self.telemetry: TelemetryEmulator | None = None
        self.started_at: float | None = None
        self.exited_at: float | None = None  # wall clock: its processes were seen gone
        self.start_attempts = 0  # RIEs spawned: more than one when a port was taken meanwhile
        self.shutdown_result: ShutdownResult | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> LambdaEnvironment:
        """Start the RIE and wait until it accepts invocations (the runtime starts on the first)."""
        if self._process is not None:
            raise EnvironmentFailed(f"environment {self.name} was already started")
        rie.check_host()
        rie_path = self._rie_path or rie.rie_binary()
        if self._layer_dir is not None and not self._layer_dir.is_dir():
            raise EnvironmentFailed(f"layer directory {self._layer_dir} does not exist")
        concurrency = self.settings.max_concurrency
        if concurrency is not None and concurrency < 1:
            raise EnvironmentFailed(f"max_concurrency must be 1 or more, not {concurrency}")
        prefix = f"concurrency-observer-{schema.safe_token(self.name)}-"
        self._work_dir = Path(tempfile.mkdtemp(prefix=prefix))
        layer_dir = self._layer_dir or self._work_dir / "empty-opt"
        layer_dir.mkdir(exist_ok=True)
        for _attempt in range(_START_ATTEMPTS):
            self.start_attempts += 1
            runtime_port, emulator_port = ports.free_port(), ports.free_port()
            self._ports = (runtime_port, emulator_port)
            if self.settings.emulate_telemetry and concurrency is None:
                # One emulator per attempt: a retry starts the output file afresh, and an
                # emulator that had read the failed attempt's lines would skip as many bytes of
                # the new one, its INIT START among them (measured: one held init in 179 at
                # scale reported nothing, its extension's record had no init duration).
                if self.telemetry is not None:
                    self.telemetry.close()
                self.telemetry = TelemetryEmulator(self._work_dir / OUTPUT_FILE).start()
            self._spawn(rie_path, layer_dir.resolve())
            _LIVE.add(self)
            if self._wait_ready(time.monotonic() + timeout):
                self.started_at = time.time()
                return self
            output = self.output
            self._kill_and_reap()
            self._release_ports()
            if "address already in use" not in output:
                tail = " | ".join(output.strip().splitlines()[-3:]) or "no output"
                self.close()
                raise EnvironmentFailed(f"environment {self.name} did not start: {tail}")
            # Another process took a port between our pick and the RIE's bind: pick again.
            self._process = None
        self.close()
        raise EnvironmentFailed(f"environment {self.name}: no free ports after retries")

    def _spawn(self, rie_path: Path, layer_dir: Path) -> None:
        assert self._ports is not None
        assert self._work_dir is not None
        runtime_port, emulator_port = self._ports
        script, mount_args = MOUNT_AND_EXEC, [str(layer_dir)]
        runtime: tuple[str, ...] = self.settings.runtime_command or (
            sys.executable,
            "-m",
            "awslambdaric",
            HANDLER,
        )
        if self.settings.max_concurrency is not None:
            script = MOUNT_LMI_AND_EXEC
            mount_args = [str(layer_dir), str(lmi_task_dir(self._work_dir))]
            runtime = ()  # the LMI mode runs /var/task/bootstrap
        lambda_python = self.settings.lambda_python_target()
        if lambda_python is not None:
            lmi = self.settings.max_concurrency is not None
            script = script.replace(
                "exec ", lambda_python_commands(lambda_python, lmi) + "exec ", 1
            )
        if self.settings.sh_is_bash:
            script = script.replace("exec ", SH_IS_BASH + "exec ", 1)
        hidden = self.settings.hidden_paths
        if lambda_python is None and LAMBDA_PYTHON_DIR not in hidden:
            # None means none: a host that has a /var/lang/bin/python3 must not show it here.
            hidden = (*hidden, LAMBDA_PYTHON_DIR)
        if hidden:
            empty_dir = self._work_dir / "hidden"
            empty_dir.mkdir(exist_ok=True)
            hide = hide_commands(hidden, empty_dir)
            script = script.replace("exec ", hide + "exec ", 1)
        argv = [
            shutil.which("unshare") or "unshare",
            *rie.unshare_flags(),
            "--",
            "/bin/sh",
            "-c",
            script,
            "sh",
            *mount_args,
            str(rie_path),
            "--runtime-api-address",
            f"{ports.LOOPBACK}:{runtime_port}",
            "--runtime-interface-emulator-address",
            f"{ports.LOOPBACK}:{emulator_port}",
            *self.settings.rie_options(),
            *runtime,
        ]
        environ = self.settings.environ()
        if self.telemetry is not None:
            environ[TELEMETRY_API_VARIABLE] = self.telemetry.address
        if self.init_gate:
            environ[INIT_GATE_VARIABLE] = str(self._work_dir / INIT_GATE_FILE)
        with (self._work_dir / OUTPUT_FILE).open("wb") as log:
            # A session of its own: the terminal's Ctrl-C does not hit the environment; we stop
            # it in order (SIGTERM to the RIE, so extensions get SHUTDOWN like in Lambda).
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=TASK_ROOT,
                env=environ,
                start_new_session=True,
            )
        self._rie_pid = None

    def _wait_ready(self, deadline: float) -> bool:
        assert self._process is not None
        assert self._ports is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            if self._rie_pid is None:
                self._rie_pid = only_child(self._process.pid)
            if self._rie_pid is not None and ports.listened_by(self._rie_pid, self._ports[1]):
                return True
            time.sleep(_POLL_S)
        return False

    def invoke(self, payload: object = None, timeout: float = 60.0) -> InvokeResult:
        """POST one invocation (``payload`` as JSON, ``{}`` if ``None``) and wait for its answer."""
        if not self.running:
            raise EnvironmentFailed(f"environment {self.name} is not running")
        assert self._ports is not None
        if self._held is None:
            self._open_gate()  # an ordinary first invoke: its init is not held
        body = json.dumps({} if payload is None else payload).encode()
        connection = http.client.HTTPConnection(ports.LOOPBACK, self._ports[1], timeout=timeout)
        if self.settings.max_concurrency is not None:  # Managed Instances: many at once

            def reconnect() -> http.client.HTTPConnection:
                assert self._ports is not None
                return http.client.HTTPConnection(ports.LOOPBACK, self._ports[1], timeout=timeout)

            with self._lock:
                self._in_flight += 1
            try:
                return post_when_a_worker_is_idle(
                    lambda c: self._post(c, body), connection, reconnect, timeout
                )
            finally:
                with self._lock:
                    self._in_flight -= 1
        # The RIE serves one invocation at a time, and a second one in flight makes it exit
        # (measured with this version): calls wait for each other here instead.
        with self._invoke_lock:
            return self._post(connection, body)

    # -- a held init: initialized, not invoked yet ----------------------------------------

    @property
    def init_was_held(self) -> bool:
        """Whether the first init was held for a later first request (``hold_init``): no
        request waited for it, so Lambda's REPORT gives it no Init Duration."""
        return self._held is not None

    def hold_init(self, payload: object = None, timeout: float = 15.0) -> None:
        """Initialize without invoking: returns once the init is held at the gate.

        The RIE initializes on a first invoke and hands that invoke to the extensions only when
        the runtime's init is over. Here the first invoke (``payload``) is sent in the background
        and the runtime waits at the gate: the extension has registered and recorded its init,
        and sees no INVOKE until ``release_init``. Shut down meanwhile, it was never invoked.
        """
        if not self.init_gate:
            raise EnvironmentFailed(f"environment {self.name} has no init gate")
        if self._held is not None:
            raise EnvironmentFailed(f"environment {self.name} was already initialized")
        assert self._work_dir is not None
        held_marker = self._work_dir / (INIT_GATE_FILE + INIT_HELD_SUFFIX)

        def first_invoke() -> None:
            try:
                # Held for as long as the control plane wants: no client timeout of its own
                # beyond the function's, which the RIE enforces.
                self._held_result = self.invoke(payload, timeout=self.settings.timeout_s + 30.0)
            except EnvironmentFailed as exc:  # shut down while held: expected, kept for release
                self._held_result = exc

        self._held = threading.Thread(target=first_invoke, name=f"held-{self.name}", daemon=True)
        self._held.start()
        deadline = time.monotonic() + timeout
        while not held_marker.exists():
            if not self._held.is_alive() or time.monotonic() >= deadline:
                tail = " | ".join(self.output.strip().splitlines()[-3:]) or "no output"
                raise EnvironmentFailed(f"environment {self.name}: init not held: {tail}")
            time.sleep(_POLL_S)

    def release_init(self) -> InvokeResult:
        """Open the gate: the held first invoke reaches the extension; its answer is returned."""
        if self._held is None:
            raise EnvironmentFailed(f"environment {self.name} has no held init")
        self._open_gate()
        self._held.join()
        result = self._held_result
        if isinstance(result, EnvironmentFailed) or result is None:
            raise result or EnvironmentFailed(f"environment {self.name}: held invoke lost")
        return result

    def _open_gate(self) -> None:
        if self.init_gate and not self._gate_open and self._work_dir is not None:
            (self._work_dir / INIT_GATE_FILE).touch()
            self._gate_open = True

    def _post(self, connection: http.client.HTTPConnection, body: bytes) -> InvokeResult:
        started_at = time.time()
        began = time.perf_counter()
        try:
            connection.request(
                "POST", INVOKE_PATH, body=body, headers={"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise EnvironmentFailed(f"invoking environment {self.name}: {exc}") from exc
        finally:
            connection.close()
        return InvokeResult(response.status, answer, time.perf_counter() - began, started_at)

    def shutdown(self, timeout: float = 5.0) -> ShutdownResult:
        """SIGTERM the RIE (extensions get SHUTDOWN), wait up to ``timeout``, then kill it all."""
        with self._lock:
            if self.shutdown_result is not None:
                return self.shutdown_result
            if self._process is None:
                raise EnvironmentFailed(f"environment {self.name} was never started")
            began = time.perf_counter()
            forced = False
            if self._process.poll() is None:
                if self._rie_pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self._rie_pid, signal.SIGTERM)
                try:
                    self._process.wait(timeout=timeout)
                    self._wait_session_empty()
                except subprocess.TimeoutExpired:
                    forced = True
                    self._kill_and_reap()
            self.exited_at = time.time()
            self.shutdown_result = ShutdownResult(
                self._process.returncode, time.perf_counter() - began, forced
            )
        self.close()
        return self.shutdown_result

    def kill(self) -> None:
        """SIGKILL the environment and everything in it at once (no SHUTDOWN event)."""
        with self._lock:
            if self._process is not None and self.shutdown_result is None:
                began = time.perf_counter()
                self._kill_and_reap()
                self.shutdown_result = ShutdownResult(
                    self._process.returncode, time.perf_counter() - began, True
                )
        self.close()

    def close(self) -> None:
        """Release what the environment holds (processes, ports, work dir); safe to repeat."""
        if self._process is not None and self._process.poll() is None:
            self._kill_and_reap()
        if self.telemetry is not None:
            self.telemetry.close()
        if self._final_output is None and self._work_dir is not None:
            self._final_output = self._read_output()
            if self.settings.output_sink is not None and self.started_at is not None:
                # Stamped now, at the shutdown: when Lambda would receive the record line.
                self.settings.output_sink.deliver(
                    self._final_output, first_init_held=self.init_was_held
                )
            if not self.keep_work_dir:
                shutil.rmtree(self._work_dir, ignore_errors=True)
        self._release_ports()
        _LIVE.discard(self)

    def _kill_and_reap(self) -> None:
        assert self._process is not None
        # unshare leads the process group; its death SIGKILLs the RIE (--kill-child), and the
        # RIE's death, as PID 1 of the namespace, kills the runtime and every extension.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=_KILL_WAIT_S)
        self._wait_session_empty()

    def _wait_session_empty(self) -> None:
        """Wait (bounded) until no process of the session is left, so callers can rely on it."""
        assert self._process is not None
        # After a SIGKILL of unshare the namespace dies asynchronously.
        deadline = time.monotonic() + _KILL_WAIT_S
        while processes_in_session(self._process.pid) and time.monotonic() < deadline:
            time.sleep(_POLL_S)

    def _release_ports(self) -> None:
        if self._ports is not None:
            for port in self._ports:
                ports.release_port(port)
            self._ports = None

    def __enter__(self) -> LambdaEnvironment:
        return self.start() if self._process is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is not None and self.shutdown_result is None:
            if exc_type is None:
                self.shutdown()
            else:
                self.kill()
        self.close()

    # -- what can be observed ----------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the RIE was started and has not exited."""
        return (
            self._process is not None and self._process.poll() is None and self._ports is not None
        )

    @property
    def busy(self) -> bool:
        """Whether another ``invoke`` would wait: one invocation in flight, or ``max_concurrency``
        of them in the Managed Instances mode."""
        if self.settings.max_concurrency is not None:
            return self._in_flight >= self.settings.max_concurrency
        return self._invoke_lock.locked()

    @property
    def emulator_url(self) -> str:
        """The base URL invocations are posted to."""
        if self._ports is None:
            raise EnvironmentFailed(f"environment {self.name} is not running")
        return f"http://{ports.LOOPBACK}:{self._ports[1]}"

    @property
    def session_id(self) -> int | None:
        """The session every process of this environment belongs to (the ``unshare`` pid)."""
        return None if self._process is None else self._process.pid

    @property
    def work_dir(self) -> Path | None:
        """Where the output log lives (kept after close with ``keep_work_dir``)."""
        return self._work_dir

    @property
    def output(self) -> str:
        """All the RIE, the runtime and the extensions wrote (stdout and stderr, in order)."""
        if self._final_output is not None:
            return self._final_output
        return self._read_output()

    def _read_output(self) -> str:
        if self._work_dir is None:
            return ""
        try:
            return (self._work_dir / OUTPUT_FILE).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def init_duration_ms(self) -> float | None:
        """The init duration the RIE reported (``INIT REPORT``), once the first invoke ran (for a
        held init, until its release: the Telemetry emulator reports it at the gate instead)."""
        match = _INIT_REPORT.search(self.output)
        return float(match.group(1)) if match else None

    def timeline(self) -> ExtensionTimeline:
        """When the extension started, was first invoked and got SHUTDOWN, by the RIE's lines."""
        return extension_timeline(self.output, EXTENSION_NAME, self.exited_at)

    def leftover_processes(self) -> list[int]:
        """Processes still alive in this environment's session (empty once it is stopped)."""
        sid = self.session_id
        return [] if sid is None else processes_in_session(sid)


# Environments started and not yet closed: killed at interpreter exit if their owner forgot.
_LIVE: set[LambdaEnvironment] = set()


@atexit.register
def _kill_leftovers() -> None:
    for environment in list(_LIVE):
        environment.kill()
