"""Lambda Managed Instances in a local environment: the RIE's own LMI mode.

``EnvironmentSettings(max_concurrency=N)`` switches it on (``AWS_LAMBDA_MAX_CONCURRENCY``); the
environment module's docstring says how it runs. Here is what the mode needs of its own: the
PATH of its unprivileged runtime, the task directory that holds that runtime as
``/var/task/bootstrap``, and the retry of an invocation the mode refuses while no runtime worker
is idle.
"""

from __future__ import annotations

import http.client
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from concurrency_observer.local.environment_results import InvokeResult

LMI_BOOTSTRAP: Final = Path(__file__).resolve().parent / "function" / "concurrent_bootstrap.py"
# What an unprivileged runtime and its extensions can run: the system's python3, not this venv's.
LMI_PATH: Final = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin:/opt/bin"
_NO_IDLE_RUNTIME: Final = b"Runtime.Unavailable"  # the LMI mode's answer when no worker is idle
_POLL_S: Final = 0.01  # as the environment polls


def lmi_task_dir(work_dir: Path) -> Path:
    """The Managed Instances task directory: the runtime as ``bootstrap``, world-readable."""
    task = work_dir / "task"
    task.mkdir(mode=0o755, exist_ok=True)
    task.chmod(0o755)  # the mount's root: the unprivileged runtime must be able to enter it
    bootstrap = task / "bootstrap"
    shutil.copyfile(LMI_BOOTSTRAP, bootstrap)
    bootstrap.chmod(0o755)
    return task


def post_when_a_worker_is_idle(
    post: Callable[[http.client.HTTPConnection], InvokeResult],
    connection: http.client.HTTPConnection,
    reconnect: Callable[[], http.client.HTTPConnection],
    timeout: float,
) -> InvokeResult:
    """Post; while the LMI mode answers that no runtime worker is idle, wait and post again.

    The RIE refuses at once (400 ``Runtime.Unavailable``) an invocation that finds every
    worker busy or not yet back on ``/next`` after its last answer; Lambda's router would
    hold it for a worker instead, so the harness does. ``post`` sends on one connection (and
    closes it), ``reconnect`` opens the next one.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = post(connection)
        unavailable = result.status == 400 and _NO_IDLE_RUNTIME in result.body
        if not unavailable or time.monotonic() >= deadline:
            return result
        time.sleep(_POLL_S)
        connection = reconnect()
