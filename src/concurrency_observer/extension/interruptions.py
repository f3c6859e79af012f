"""SIGTERM's plumbing: the flag the handler sets, and the exception that cuts a blocking wait.

Lambda sends SIGTERM when it wants the extension gone without (or racing) a SHUTDOWN event. The
handler must not cut a delivery in half, so it only interrupts a wait the event loop runs
through ``Interruptions.wait`` (``/event/next``, a backoff sleep); anywhere else it only sets
``requested``.

The order inside ``wait`` closes the race between checking and blocking: ``interruptible`` is set
first, then ``requested`` is checked again. A SIGTERM before the flag is set is seen by the check;
one after it raises ``Terminated`` at once. Checking first and setting the flag after would leave
a gap where a SIGTERM only sets ``requested`` and the extension then blocks in ``/event/next``
(no timeout) until Lambda kills it, losing the shutdown record.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    _T = TypeVar("_T")


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

    def wait(self, blocking: Callable[..., _T], *args: object) -> _T:
        """``blocking(*args)``, which SIGTERM may interrupt: ``Terminated`` if SIGTERM came before
        or comes during it."""
        self.interruptible = True  # first: from here on the handler raises instead of flagging
        try:
            if self.requested:  # then check: a SIGTERM that came before the flag was set
                raise Terminated
            return blocking(*args)
        finally:
            self.interruptible = False
