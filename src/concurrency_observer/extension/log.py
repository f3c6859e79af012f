"""One-line log messages with the ``[concurrency-observer]`` prefix, on stderr.

Not the ``logging`` module: it imports ``threading``, ``traceback`` and ``string`` at every cold
start, and the extension writes a handful of lines. Lambda sends an extension's stderr to the
function's log stream; the lines belong to the user, so the default level (INFO) writes at most one
line at init and one at shutdown. Every line, at every level, passes through ``redaction.redact``
first: no credential reaches the log, whatever a message quotes.
"""

from __future__ import annotations

import sys

from concurrency_observer.extension.redaction import redact

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

PREFIX = "[concurrency-observer]"
LEVELS = {"ERROR": 40, "WARNING": 30, "INFO": 20, "DEBUG": 10}
MAX_MESSAGE = 1000  # characters: one line stays readable in the function's log


def _write_stderr(line: str) -> None:
    sys.stderr.write(line)
    sys.stderr.flush()


class Logger:
    """Writes ``[concurrency-observer] LEVEL message`` lines at or above a level."""

    def __init__(self, level: str = "INFO", write: Callable[[str], None] = _write_stderr) -> None:
        self._threshold = LEVELS.get(level, LEVELS["INFO"])
        self._write = write
        # Read on the per-event path, so a DEBUG message is not even formatted when it is dropped.
        self.debugging = self._threshold <= LEVELS["DEBUG"]

    def enabled(self, level: str) -> bool:
        """Whether a message at ``level`` would be written (to skip building costly messages)."""
        return LEVELS[level] >= self._threshold

    def log(self, level: str, message: str) -> None:
        """Write ``message`` on one line if ``level`` is enabled: secrets masked, cut at
        ``MAX_MESSAGE`` characters (an echoed setting or body can be any size), newlines escaped
        (a value cannot start a line of its own, such as a forged EMF document)."""
        if self.enabled(level):
            flat = redact(message, MAX_MESSAGE).replace("\r", "\\r").replace("\n", "\\n")
            try:  # noqa: SIM105 (contextlib is not loaded at cold start; this code avoids it)
                self._write(f"{PREFIX} {level} {flat}\n")
            except (OSError, ValueError):
                pass  # a closed stderr must not take the extension down

    def debug(self, message: str) -> None:
        """Log at DEBUG (per-event lines)."""
        self.log("DEBUG", message)

    def info(self, message: str) -> None:
        """Log at INFO (one line at init, one at shutdown)."""
        self.log("INFO", message)

    def warning(self, message: str) -> None:
        """Log at WARNING (something the user should fix; the extension carries on)."""
        self.log("WARNING", message)

    def error(self, message: str) -> None:
        """Log at ERROR."""
        self.log("ERROR", message)
