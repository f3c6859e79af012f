"""The Extensions API client: requests as data, and the client against a real local server."""

from __future__ import annotations

import json

import pytest

from concurrency_observer.extension.events import InvokeEvent, MalformedEventError
from concurrency_observer.extension.extensions_api import (
    EXTENSION_ID_HEADER,
    EXTENSION_NAME_HEADER,
    ApiRequest,
    ExtensionsApi,
    ExtensionsApiError,
    next_event_request,
    register,
    register_request,
)

from .fakes import EXTENSION_ID, FakeExtensionsApi


def test_register_request() -> None:
    """Register posts the events under the extension's name."""
    request = register_request("concurrency-observer", ("INVOKE", "SHUTDOWN"))
    assert request.method == "POST"
    assert request.path == "/2020-01-01/extension/register"
    assert (EXTENSION_NAME_HEADER, "concurrency-observer") in request.headers
    assert json.loads(request.body) == {"events": ["INVOKE", "SHUTDOWN"]}


def test_register_request_shutdown_only() -> None:
    """Registering for SHUTDOWN alone sends only SHUTDOWN."""
    assert json.loads(register_request("x", ("SHUTDOWN",)).body) == {"events": ["SHUTDOWN"]}


def test_next_event_request() -> None:
    """/event/next is a GET carrying the extension's identifier and no body."""
    assert next_event_request("id-1") == ApiRequest(
        "GET", "/2020-01-01/extension/event/next", ((EXTENSION_ID_HEADER, "id-1"),)
    )


def test_register_and_poll_against_server() -> None:
    """register() returns the identifier; next_event() parses events, on one connection."""
    events: list[dict[str, object]] = [
        {"eventType": "INVOKE", "deadlineMs": 10, "requestId": "r1"},
        {"raw": "{broken"},
    ]
    with FakeExtensionsApi(events).running() as fake:
        api = ExtensionsApi(fake.address)
        registered = register(api, "my-ext", ("INVOKE", "SHUTDOWN"))
        assert registered.extension_id == EXTENSION_ID
        assert registered.next_event() == InvokeEvent("r1")
        with pytest.raises(MalformedEventError):
            registered.next_event()
        api.close()
    assert fake.requests[0].headers[EXTENSION_NAME_HEADER] == "my-ext"
    assert fake.requests[1].headers[EXTENSION_ID_HEADER] == EXTENSION_ID


def test_register_refused_carries_endpoint_status_body() -> None:
    """A refused registration raises ExtensionsApiError with the endpoint, status and body."""
    with FakeExtensionsApi([], register_status=403).running() as fake:
        api = ExtensionsApi(fake.address)
        with pytest.raises(ExtensionsApiError) as caught:
            register(api, "x")
        api.close()
    error = caught.value
    assert error.status == 403
    assert error.endpoint == f"http://{fake.address}/2020-01-01/extension/register"
    assert "Forbidden" in error.body
    assert "403" in str(error)


def test_unreachable_api_is_an_api_error() -> None:
    """No server: ExtensionsApiError with no status, not a bare OSError."""
    with FakeExtensionsApi([]).running() as fake:
        address = fake.address
    api = ExtensionsApi(address, timeout=0.5)
    with pytest.raises(ExtensionsApiError) as caught:
        register(api, "x")
    assert caught.value.status is None
