"""The events ``/event/next`` returns, each its own type, and the one parser that makes them.

``parse_next_event`` turns a response body into an ``InvokeEvent``, a ``ShutdownEvent`` or an
``UnknownEvent`` (a type Lambda may add later: logged and skipped), and raises
``MalformedEventError`` when the envelope is wrong (not JSON, not an object, no string
``eventType``); no other exception escapes it. Fields used only for timing are lenient: a SHUTDOWN
whose ``deadlineMs`` is missing or not a number is still a SHUTDOWN (``deadline_ms`` is ``None``
and the extension uses its own short budget), because losing the shutdown record is worse. An
INVOKE keeps only its ``requestId`` (for DEBUG lines): its deadline is the function's business,
and its other fields are not read, so no value of theirs can make it malformed.
"""

from __future__ import annotations

from concurrency_observer.extension.frozen import value
from concurrency_observer.schema import normalize_shutdown_reason

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeAlias

INVOKE = "INVOKE"
SHUTDOWN = "SHUTDOWN"
# Epoch milliseconds beyond the integers a float holds exactly are not a deadline (year 287396).
_MAX_DEADLINE_MS = 2**53


class MalformedEventError(ValueError):
    """The body of ``/event/next`` is not an event: not JSON, not an object, wrong field types."""


@value
class InvokeEvent:
    """Lambda is invoking the function (``request_id`` as Lambda sent it, bounded)."""

    request_id: str


@value
class ShutdownEvent:
    """The environment is shutting down.

    ``reason`` is the normalised ShutdownReason dimension value (``spindown``, ``timeout``,
    ``failure``, or the RIE's ``sandboxterminated``); ``deadline_ms`` (epoch ms) is when Lambda
    stops waiting for the extension.
    """

    reason: str
    deadline_ms: int | None


@value
class UnknownEvent:
    """An event type this extension does not know (``event_type`` as Lambda sent it, bounded)."""

    event_type: str


if TYPE_CHECKING:
    NextEvent: TypeAlias = InvokeEvent | ShutdownEvent | UnknownEvent


def _deadline(document: dict[str, object]) -> int | None:
    deadline = document.get("deadlineMs")
    # bool is an int in Python: a JSON true is not a deadline. Nor is NaN, an infinity, or an
    # integer too large for a float (JSON allows any; converting one raises OverflowError).
    if isinstance(deadline, bool) or not isinstance(deadline, int | float):
        return None
    if not -_MAX_DEADLINE_MS <= deadline <= _MAX_DEADLINE_MS:  # compared exactly; NaN fails too
        return None
    return int(deadline)


def parse_next_event(body: bytes) -> NextEvent:
    """The event in a ``/event/next`` response body; ``MalformedEventError`` if there is none."""
    # Imported at the first event, after the first /event/next: json (with re) costs about 7 ms,
    # which the init would pay if it were imported at the top (docs/design.md, "Nothing heavy at
    # cold start").
    import json  # noqa: PLC0415

    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise MalformedEventError(f"not JSON: {error}") from None
    if not isinstance(document, dict):
        raise MalformedEventError(f"not a JSON object: {type(document).__name__}")
    event_type = document.get("eventType")
    if not isinstance(event_type, str) or not event_type:
        raise MalformedEventError(f"eventType is missing or not a string: {event_type!r:.80}")
    if event_type == INVOKE:
        request_id = document.get("requestId")
        request_id = request_id[:128] if isinstance(request_id, str) else ""
        return InvokeEvent(request_id)
    if event_type == SHUTDOWN:
        return ShutdownEvent(
            normalize_shutdown_reason(document.get("shutdownReason")), _deadline(document)
        )
    return UnknownEvent(event_type[:64])
