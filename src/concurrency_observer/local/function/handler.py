"""A tiny Lambda handler for the local environments: answers at once, or after ``sleep_ms``.

Event (all keys optional)::

    {"sleep_ms": 250, "echo_env": ["AWS_REGION"]}

``sleep_ms`` keeps the environment busy (the fleet uses it to force new environments);
``echo_env`` returns those environment variables (tests check what leaks into an environment).
The answer says which environment served the invocation and how many it has served.
"""

from __future__ import annotations

import os
import time
from typing import Any

_MAX_SLEEP_MS = 60_000
_served = 0  # per environment: the module lives as long as the runtime process


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Sleep ``event['sleep_ms']`` milliseconds (bounded), then describe this environment."""
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
        "slept_ms": sleep_ms if isinstance(sleep_ms, int | float) and sleep_ms > 0 else 0,
        "env": echoed,
    }
