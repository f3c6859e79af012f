"""SIGTERM's plumbing: the flag the handler sets, and the exception that cuts a blocking wait.

Lambda sends SIGTERM when it wants the extension gone without (or racing) a SHUTDOWN event. The
handler must not cut a delivery in half, so it only interrupts a wait the event loop marked
interruptible (``/event/next``, a backoff sleep); anywhere else it only sets ``requested``.
"""

from __future__ import annotations


class Terminated(BaseException):
    """Raised by the SIGTERM handler to interrupt a blocking wait (not an ``Exception``, so the
    loop's catch-all for unexpected errors cannot swallow it)."""


class Interruptions:
    """Shared with the SIGTERM handler: whether SIGTERM came, and whether it may interrupt now."""

    def __init__(self) -> None:
        self.requested = False
        self.interruptible = False

    def on_sigterm(self, _signum: int, _frame: object) -> None:
        """The SIGTERM handler."""
        self.requested = True
        if self.interruptible:
            raise Terminated
