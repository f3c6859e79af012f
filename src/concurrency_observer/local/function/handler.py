"""A tiny Lambda handler for the local environments: answers at once, or after ``sleep_ms``.

Event (all keys optional)::

    {"sleep_ms": 250, "echo_env": ["AWS_REGION"]}

``sleep_ms`` keeps the environment busy (the fleet uses it to force new environments);
``echo_env`` returns those environment variables (tests check what leaks into an environment).
The answer says which environment served the invocation and how many it has served.

**The init gate.** When ``CONCURRENCY_OBSERVER_LOCAL_INIT_GATE`` names a file, importing this
module (the runtime's init) waits until that file exists. The RIE initializes on the first invoke
and hands that invoke to the extensions only once the runtime's init is over, so a held init is
how the local control plane makes an environment that is initialized (its extension registered
and recorded the init) but not invoked yet: Lambda's provisioned and proactive environments. The
fleet creates the file when it first routes an invocation there, or shuts the environment down
while it is still held (never invoked). docs/simulate.md has the details.

On Lambda such an environment has finished its init and waits frozen; here the init is still
under way for the RIE, which later reports it as lasting until the release (or as failed, shut
down while held). So on reaching the gate the handler also prints ``INIT HELD(at: T)`` (T: epoch
seconds): the harness's Telemetry API emulator reports the init there, successful, lasting from
the RIE's ``INIT START`` to T, as Lambda would (``local/telemetry_emulator.py``).

**A failing init.** When ``CONCURRENCY_OBSERVER_LOCAL_INIT_ERROR`` is set, importing this module
raises (before the gate, which a function whose code cannot load never reaches): every init fails.
"""

from __future__ import annotations

import os
import time
from typing import Any

_MAX_SLEEP_MS = 60_000
_GATE_VARIABLE = "CONCURRENCY_OBSERVER_LOCAL_INIT_GATE"
_GATE_POLL_S = 0.02
_GATE_MAX_WAIT_S = 3600.0  # never hold forever: an orphaned gate must not pin a process
_served = 0  # per environment: the module lives as long as the runtime process


def _wait_for_gate() -> None:
    """Hold the init until the gate file exists (see the module docstring)."""
    gate = os.environ.get(_GATE_VARIABLE)
    if not gate:
        return
    # Tell the control plane the init has reached the gate (the extension started before the
    # runtime, so it has registered by now), and the Telemetry emulator when: the init's end.
    print(f"INIT HELD(at: {time.time():.6f})", flush=True)
    with open(gate + ".held", "w", encoding="ascii"):
        pass
    deadline = time.monotonic() + _GATE_MAX_WAIT_S
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(_GATE_POLL_S)


if os.environ.get("CONCURRENCY_OBSERVER_LOCAL_INIT_ERROR"):
    raise RuntimeError("init failed on purpose (CONCURRENCY_OBSERVER_LOCAL_INIT_ERROR)")
_wait_for_gate()


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Sleep ``event['sleep_ms']`` milliseconds (bounded), then describe this environment."""
    invoked_monotonic = time.monotonic()  # one clock for the whole machine: the fleet's too
    global _served  # per environment: the point of the count
    _served += 1
    request = event if isinstance(event, dict) else {}
    sleep_ms = request.get("sleep_ms", 0)
    if isinstance(sleep_ms, int | float) and sleep_ms > 0:
        time.sleep(min(float(sleep_ms), _MAX_SLEEP_MS) / 1000)
    names = request.get("echo_env", [])
    echoed = {n: os.environ.get(n) for n in names if isinstance(n, str)} if names else {}
    return {
        "pid": os.getpid(),
        "invocation": _served,
        "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
        "request_id": getattr(context, "aws_request_id", None),
        "invoked_monotonic": invoked_monotonic,
        "slept_ms": sleep_ms if isinstance(sleep_ms, int | float) and sleep_ms > 0 else 0,
        "env": echoed,
    }
