"""``parse_next_event``: the three event types, and a clean error for anything malformed."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from concurrency_observer.extension.events import (
    InvokeEvent,
    MalformedEventError,
    ShutdownEvent,
    UnknownEvent,
    parse_next_event,
)


def test_invoke() -> None:
    """An INVOKE event as Lambda documents it."""
    body = {
        "eventType": "INVOKE",
        "deadlineMs": 1700000003000,
        "requestId": "3da1f2dc-3222-475e-9205-e2e6c6318895",
        "invokedFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:f",
        "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-5f35ae12"},
    }
    event = parse_next_event(json.dumps(body).encode())
    assert event == InvokeEvent("3da1f2dc-3222-475e-9205-e2e6c6318895")


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("spindown", "spindown"), ("TIMEOUT", "timeout"), ("SandboxTerminated", "sandboxterminated")],
)
def test_shutdown_reason_normalised(reason: str, expected: str) -> None:
    """The shutdown reason becomes the lower-case ShutdownReason token."""
    body = {"eventType": "SHUTDOWN", "shutdownReason": reason, "deadlineMs": 1700000002000}
    assert parse_next_event(json.dumps(body).encode()) == ShutdownEvent(expected, 1700000002000)


def test_shutdown_reason_bounded() -> None:
    """A hostile reason is reduced to a short safe token."""
    body = {"eventType": "SHUTDOWN", "shutdownReason": "x" * 500 + "\n<script>", "deadlineMs": 1}
    event = parse_next_event(json.dumps(body).encode())
    assert isinstance(event, ShutdownEvent)
    assert len(event.reason) <= 32
    assert set(event.reason) <= set("abcdefghijklmnopqrstuvwxyz0123456789_.-")


@pytest.mark.parametrize("deadline", [None, "soon", True, [1]])
def test_shutdown_with_bad_deadline_is_still_a_shutdown(deadline: object) -> None:
    """A SHUTDOWN whose deadline is missing or not a number keeps its meaning; deadline None."""
    body: dict[str, object] = {"eventType": "SHUTDOWN", "shutdownReason": "spindown"}
    if deadline is not None:
        body["deadlineMs"] = deadline
    assert parse_next_event(json.dumps(body).encode()) == ShutdownEvent("spindown", None)


def test_shutdown_without_reason() -> None:
    """A SHUTDOWN without a reason gets ShutdownReason ``unknown``."""
    assert parse_next_event(b'{"eventType":"SHUTDOWN","deadlineMs":5}') == ShutdownEvent(
        "unknown", 5
    )


def test_unknown_type() -> None:
    """An event type this extension does not know is kept as UnknownEvent, not an error."""
    assert parse_next_event(b'{"eventType":"RESTORE"}') == UnknownEvent("RESTORE")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'"INVOKE"',
        b"null",
        b"{}",
        b'{"eventType": 3}',
        b'{"eventType": ""}',
        b'{"eventType": null}',
        b"[" * 100000,
    ],
)
def test_malformed(body: bytes) -> None:
    """Malformed bodies raise MalformedEventError and nothing else."""
    with pytest.raises(MalformedEventError):
        parse_next_event(body)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_escape(body: bytes) -> None:
    """Property: any bytes give an event or MalformedEventError, never another exception."""
    try:
        event = parse_next_event(body)
    except MalformedEventError:
        return
    assert isinstance(event, InvokeEvent | ShutdownEvent | UnknownEvent)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)


@given(
    st.sampled_from(["INVOKE", "SHUTDOWN", "OTHER"]),
    st.dictionaries(
        st.sampled_from(["deadlineMs", "requestId", "shutdownReason", "x"]), json_values
    ),
)
def test_any_fields_never_escape(event_type: str, fields: dict[str, object]) -> None:
    """Property: a valid eventType with arbitrary other fields always parses to its type."""
    body = json.dumps({**fields, "eventType": event_type}).encode()
    event = parse_next_event(body)
    expected = {"INVOKE": InvokeEvent, "SHUTDOWN": ShutdownEvent, "OTHER": UnknownEvent}
    assert isinstance(event, expected[event_type])
    if isinstance(event, ShutdownEvent):
        assert event.deadline_ms is None or isinstance(event.deadline_ms, int)
