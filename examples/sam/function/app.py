"""A stand-in for your function: it holds its execution environment for a moment, then answers.

Invoke it concurrently (or give the alias provisioned concurrency) and compare the number of
environments concurrency-observer counts with the concurrency you asked for.
"""

from __future__ import annotations

import os
import time
from typing import Any

# Bounded, so a typo in a test event cannot hold an environment for the whole timeout.
_MAX_SLEEP_SECONDS = 5.0


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Sleep ``event["sleep"]`` seconds (default 0.2, at most 5) and say which version ran."""
    seconds = min(float(event.get("sleep", 0.2)), _MAX_SLEEP_SECONDS)
    time.sleep(max(seconds, 0.0))
    return {"slept": seconds, "version": os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")}
