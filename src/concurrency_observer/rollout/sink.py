"""Which sink an observed function writes to, and whether its runtime gets the bash fallback.

Shared by ``publish`` (attach and its plan) and ``observer_settings`` (the variables attaching
sets): both build on these names, so they live below both.
"""

from __future__ import annotations

import re
from typing import Final, Literal

Sink = Literal["cloudwatch", "emf"]
SINKS: Final[tuple[Sink, ...]] = ("cloudwatch", "emf")
DEFAULT_SINK: Final[Sink] = "cloudwatch"
SINK_VARIABLE: Final = "CONCURRENCY_OBSERVER_SINK"

# The launcher runs the extension on the runtime's own python3, and the code needs 3.10+; on any
# other runtime the bash fallback runs instead.
MIN_PYTHON: Final = (3, 10)

_PYTHON_RUNTIME: Final = re.compile(r"python(\d+)\.(\d+)")


def python_version_of(runtime: str | None) -> tuple[int, int] | None:
    """``(3, 12)`` for ``python3.12``; None for any other runtime (or none, a container image)."""
    match = _PYTHON_RUNTIME.fullmatch(runtime or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def uses_fallback(runtime: str | None) -> bool:
    """Whether the layer's bash fallback, not the Python extension, runs on ``runtime``."""
    python = python_version_of(runtime)
    return python is None or python < MIN_PYTHON
