"""The hand-off from the shell front door: who registered, and the milestones sent back to it.

The shell front door (``layer/fallback.sh``) registers with the Extensions API before any
interpreter starts (Lambda starts the runtime only once every extension has registered, so what
comes before Register is paid in full). It then starts Python as its child and passes, on the
command line after the extension's name and the interpreter's origin::

    --handoff FD EXTENSION_ID EVENTS REGISTER_BODY [STARTED_MS]

``FD`` is the write end of a pipe the shell reads; ``EVENTS`` the events Lambda accepted, comma
separated; ``REGISTER_BODY`` the Register response's body (JSON: functionName, functionVersion,
handler), cut by the shell; ``STARTED_MS`` the wall clock (epoch ms) at which the front door, the
process Lambda started, began: the environment's extension started then, not when Python did, so
the record's ``initTime``, lifetime and time to first invoke run from it, as the bash engine's
do. No file holds any of it. Python writes two milestones on ``FD``, one
line each:

- ``init``: the init record is Python's (it has gone out, or is on its way): the shell must not
  write one if it takes over. Not said for a record kept for the shutdown delivery (an on-demand
  init's, or one CloudWatch refused at init): if Python ends before ``loop``, the shell writes it;
- ``loop``: right before the first ``/event/next``; from here on Python owns the event loop and
  the pipe is closed.

If Python ends before ``loop`` (too old, an import or a check failing, killed), the shell reads
end-of-file and serves the events itself with the same identifier (docs/design.md, "One shell
front door").
"""

from __future__ import annotations

from concurrency_observer.extension import lean_os
from concurrency_observer.extension.frozen import value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

HANDOFF_FLAG = "--handoff"
INIT_MILESTONE = b"init\n"
LOOP_MILESTONE = b"loop\n"
_KNOWN_EVENTS = ("INVOKE", "SHUTDOWN")
_MAX_ID = 256
_MAX_BODY = 4096
# How far before Python's own start the front door's may lie and still be believed: the shell
# registers and starts Python within milliseconds; a value further off (a clock step, a forged
# argument) is ignored and Python's own start is used.
_MAX_HANDOFF_AGE_MS = 30_000


class HandOffError(ValueError):
    """The hand-off arguments are not what the front door sends."""


@value
class HandOff:
    """What the front door did: the identifier, the events registered, the Register answer."""

    extension_id: str
    events: tuple[str, ...]
    register_body: str  # as the front door cut it, read by register_fields when needed
    milestone_fd: int
    started_ms: int | None = None  # the front door's start, epoch ms, when it said so


def parse_handoff(argv: Sequence[str]) -> HandOff | None:
    """The hand-off in ``argv`` (after ``HANDOFF_FLAG``); ``None`` when there is none.

    ``HandOffError`` when the flag is there but what follows is not a hand-off.
    """
    if HANDOFF_FLAG not in argv:
        return None
    at = list(argv).index(HANDOFF_FLAG)
    rest = list(argv[at + 1 : at + 6])
    if len(rest) < 3:
        raise HandOffError(f"{HANDOFF_FLAG} needs FD EXTENSION_ID EVENTS [BODY]")
    raw_fd, extension_id, raw_events = rest[:3]
    body = rest[3] if len(rest) > 3 else ""
    raw_started = rest[4] if len(rest) > 4 else ""
    started_ms = int(raw_started) if raw_started.isascii() and raw_started.isdigit() else None
    if not (raw_fd.isascii() and raw_fd.isdigit() and len(raw_fd) < 6):
        raise HandOffError(f"the milestone descriptor is not a number: {raw_fd[:20]!r}")
    if not extension_id or len(extension_id) > _MAX_ID or not extension_id.isprintable():
        raise HandOffError("the extension identifier is empty or not printable")
    events = tuple(e for e in _KNOWN_EVENTS if e in raw_events.split(","))
    if "SHUTDOWN" not in events:
        raise HandOffError(f"the registered events lack SHUTDOWN: {raw_events[:40]!r}")
    return HandOff(extension_id, events, body[:_MAX_BODY], int(raw_fd), started_ms)


def front_door_start(
    handoff: HandOff, started_wall: float, started_mono: float
) -> tuple[float, float]:
    """The wall and monotonic clocks of the front door's start, from Python's own start.

    The front door's start when the hand-off gives one within ``_MAX_HANDOFF_AGE_MS`` before
    Python's (and not after it); otherwise Python's own start, unchanged.
    """
    if handoff.started_ms is None:
        return started_wall, started_mono
    earlier_s = started_wall - handoff.started_ms / 1000
    if not 0 <= earlier_s * 1000 <= _MAX_HANDOFF_AGE_MS:
        return started_wall, started_mono
    return started_wall - earlier_s, started_mono - earlier_s


def register_fields(body: str) -> dict[str, str]:
    """The Register response's string fields (functionName, functionVersion, handler...).

    Not parsed in the hand-off itself: ``json`` (with ``re``) costs about 7 ms to import, and
    nothing before the first ``/event/next`` needs these fields."""
    import json  # noqa: PLC0415

    try:
        document = json.loads(body[:_MAX_BODY]) if body else {}
    except ValueError:
        return {}
    if not isinstance(document, dict):
        return {}
    return {k: v[:256] for k, v in document.items() if isinstance(k, str) and isinstance(v, str)}


class Milestones:
    """The pipe back to the front door; every write is best effort (the shell may be gone)."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd

    def init_is_ours(self) -> None:
        """Say that the init record is Python's."""
        self._write(INIT_MILESTONE)

    def owning_the_loop(self) -> None:
        """Say that Python owns the event loop from now on, and close the pipe."""
        self._write(LOOP_MILESTONE)
        fd, self.fd = self.fd, None
        if fd is not None:
            try:  # noqa: SIM105 (contextlib is not loaded at cold start; this code avoids it)
                lean_os.close(fd)
            except OSError:
                pass

    def _write(self, line: bytes) -> None:
        if self.fd is None:
            return
        try:
            lean_os.write(self.fd, line)
        except OSError:
            self.fd = None
