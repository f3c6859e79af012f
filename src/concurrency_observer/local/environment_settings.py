"""What a local Lambda environment is told: its variables, its interpreter, its paths.

``EnvironmentSettings`` says what an environment looks like from inside (function, init type,
region, endpoint, the mode, what is hidden); ``environ()`` builds the complete set of variables
the RIE, the runtime and the extensions see (dummy credentials, never the host's). The
environment itself (``local/environment.py``) starts, invokes and stops it.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from concurrency_observer import schema
from concurrency_observer.local.managed_instances import LMI_PATH

TASK_ROOT: Final = Path(__file__).resolve().parent / "function"
# A runtime with no python at all: bash on the Runtime API over /dev/tcp (see the file).
BASH_RUNTIME: Final = TASK_ROOT / "bash_runtime.sh"
# Where Lambda's Python runtimes keep their interpreter (the launcher's second place to look).
LAMBDA_PYTHON_DIR: Final = "/var/lang/bin"

# Dummy credentials: the cloudwatch sink signs with them; moto accepts any. Never the host's.
DUMMY_ACCESS_KEY_ID: Final = "AKIALOCALSIMULATION"
DUMMY_SECRET_ACCESS_KEY: Final = "local-simulation-secret"  # noqa: S105 (not a secret)
DUMMY_SESSION_TOKEN: Final = "local-simulation-token"  # noqa: S105 (not a secret)


class OutputSink(Protocol):
    """Takes an environment's whole output at its close (``log_delivery.LambdaLogDelivery``)."""

    def deliver(
        self, output: str, stamp: float | None = None, *, first_init_held: bool = False
    ) -> str | None:
        """Deliver ``output``'s lines stamped at ``stamp`` (epoch seconds); never raises.
        ``first_init_held``: the environment was initialized ahead of its first request."""
        ...


@dataclass(frozen=True)
class EnvironmentSettings:
    """What an environment looks like from inside: its function, init type, region, endpoint.

    ``extra_env`` adds or overrides variables (``CONCURRENCY_OBSERVER_*``, see ``observer_env``).
    ``init_caching`` runs the RIE with ``--enable-init-caching`` (what SnapStart uses): it then
    sets ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` and ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` and
    serves the credentials of its own environment at that URI (with ``Expiration``
    ``0001-01-01T00:00:00Z``); the ``AWS_ACCESS_KEY_ID`` family is still passed through.
    ``max_concurrency`` runs the RIE's Lambda Managed Instances mode with that many invocations
    at once per environment (see ``local/environment.py``'s docstring); ``None``: the
    ordinary mode.
    ``emulate_telemetry`` serves the Telemetry API the RIE's default mode only stubs, from what
    the RIE reports (``telemetry_emulator``; the LMI mode has the real one).
    ``runtime_command`` replaces the Python runtime (``awslambdaric``) with another one, such as
    ``("/bin/bash", str(BASH_RUNTIME))``; ``hidden_paths`` are covered inside the environment's
    own mount namespace (a file by ``/dev/null``, a directory by an empty one; missing ones are
    skipped), e.g. ``python3_paths(...)`` to run it as a runtime without python3.
    ``lambda_python`` is the interpreter the environment has at ``/var/lang/bin/python3``, as
    Lambda's Python runtimes do (``/var`` is then a tmpfs of the environment's mount namespace):
    by default the runtime's own (this interpreter; the system's python3 in the Managed Instances
    mode), ``None`` for none, as on every other runtime and whenever ``hidden_paths`` covers
    ``/var/lang/bin``. ``sh_is_bash`` bind-mounts bash over ``/bin/sh``, as Amazon Linux has it.
    """

    function_name: str = "concurrency-observer-local"
    function_version: str = "$LATEST"
    init_type: str | None = schema.INIT_ON_DEMAND
    region: str = "us-east-1"
    cloudwatch_endpoint: str | None = None
    memory_size_mb: int = 128
    timeout_s: int = 30
    extra_env: Mapping[str, str] = field(default_factory=dict)
    init_caching: bool = False
    max_concurrency: int | None = None
    runtime_command: tuple[str, ...] | None = None
    hidden_paths: tuple[str, ...] = ()
    lambda_python: str | None = sys.executable
    sh_is_bash: bool = False
    emulate_telemetry: bool = False
    # Where the output goes when the environment is closed, as Lambda delivers it to the
    # function's log group (``local.log_delivery``); None: it stays in ``output`` only.
    output_sink: OutputSink | None = field(default=None, compare=False)

    def lambda_python_target(self) -> str | None:
        """What ``/var/lang/bin/python3`` is inside the environment, ``None`` when it is absent."""
        if self.lambda_python is None or LAMBDA_PYTHON_DIR in self.hidden_paths:
            return None
        if self.max_concurrency is not None and self.lambda_python == sys.executable:
            # The LMI mode's unprivileged runtime cannot read this venv: the system's python3.
            return shutil.which("python3", path=LMI_PATH)
        return self.lambda_python

    def rie_options(self) -> list[str]:
        """The RIE's own options these settings ask for (before the runtime's command)."""
        return ["--enable-init-caching"] if self.init_caching else []

    def environ(self, python: str = sys.executable) -> dict[str, str]:
        """The complete environment of the RIE and so of the runtime and extensions."""
        python_bin = str(Path(python).parent)
        env = {
            # The runtime's python first, as /var/lang/bin is in Lambda: the layer's launcher
            # runs the first python3 on PATH. /opt/bin like Lambda's PATH.
            "PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin:/opt/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": str(TASK_ROOT),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info[0]}.{sys.version_info[1]}",
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": self.function_version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_size_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(self.timeout_s),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
            "AWS_SESSION_TOKEN": DUMMY_SESSION_TOKEN,
        }
        if self.init_type is not None:  # None: leave it unset, as the RIE itself does
            env["AWS_LAMBDA_INITIALIZATION_TYPE"] = self.init_type
        if self.max_concurrency is not None:
            env["AWS_LAMBDA_MAX_CONCURRENCY"] = str(self.max_concurrency)
            env["PATH"] = LMI_PATH
            env.pop("AWS_LAMBDA_INITIALIZATION_TYPE", None)  # the RIE's LMI mode sets it
        if self.cloudwatch_endpoint is not None:
            env["AWS_ENDPOINT_URL_CLOUDWATCH"] = self.cloudwatch_endpoint
        env.update(self.extra_env)
        return env


def python3_paths(search_path: str) -> tuple[str, ...]:
    """Every ``python3`` on ``search_path`` (a PATH value) and Lambda's ``/var/lang/bin``.

    What to hide (``EnvironmentSettings.hidden_paths``) so an environment has no python3 at all:
    ``/dev/null`` over a file is not a regular executable, so ``command -v`` passes it by.
    """
    found = [str(Path(d) / "python3") for d in search_path.split(":") if d]
    return (*dict.fromkeys(p for p in found if os.path.lexists(p)), LAMBDA_PYTHON_DIR)


def observer_env(
    sink: str | None = None,
    namespace: str | None = None,
    log_level: str | None = None,
    metrics: str | None = None,
) -> dict[str, str]:
    """``CONCURRENCY_OBSERVER_*`` variables for the extension; ``None`` keeps its default."""
    settings = {"SINK": sink, "NAMESPACE": namespace, "LOG_LEVEL": log_level, "METRICS": metrics}
    return {f"CONCURRENCY_OBSERVER_{k}": v for k, v in settings.items() if v is not None}
