"""What a local environment answers: one invocation as the caller saw it, and how it ended."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class InvokeResult:
    """One invocation as the caller saw it.

    ``latency_s`` runs from sending the request (after waiting for any invocation in flight) to
    the whole answer; on the first invocation it includes the environment's init.
    """

    status: int
    body: bytes
    latency_s: float
    started_at: float  # wall clock, seconds since the epoch

    @property
    def payload(self) -> Any:
        """The body decoded as JSON, or ``None`` if it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def invoked_monotonic(self) -> float | None:
        """When the function began this invocation, in ``time.monotonic()`` seconds (one clock
        for the machine: no time namespace), as the function of ``function/handler.py`` says."""
        payload = self.payload
        value = payload.get("invoked_monotonic") if isinstance(payload, dict) else None
        return float(value) if isinstance(value, int | float) else None

    @property
    def function_error(self) -> str | None:
        """The ``errorType`` when the function failed (the RIE answers 200 with an error body)."""
        payload = self.payload
        if isinstance(payload, dict) and "errorType" in payload:
            return str(payload["errorType"])
        return None


@dataclass(frozen=True)
class ShutdownResult:
    """How an environment ended: its exit code, how long the stop took, whether it was killed."""

    exit_code: int | None
    duration_s: float
    forced: bool
