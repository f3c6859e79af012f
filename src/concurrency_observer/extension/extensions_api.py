"""The Lambda Extensions API client: requests built as data, one choke point, one error type.

Requests are made by pure functions (``register_request``, ``next_event_request``) and tested
as data. ``ExtensionsApi.call`` is the only place that sends them; any status other than the
expected one raises ``ExtensionsApiError`` with the endpoint, the status and the body.
``register`` returns a ``RegisteredExtension``, the only object that can poll ``/event/next``.
There is no error reporting: ``/extension/init/error`` and ``/extension/exit/error`` precede an
exit, and this extension never exits before SHUTDOWN (see ``event_loop``).
"""

from __future__ import annotations

from concurrency_observer.extension.events import parse_next_event
from concurrency_observer.extension.frozen import value
from concurrency_observer.extension.http11 import Connection, HttpError, parse_url

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from concurrency_observer.extension.events import NextEvent
    from concurrency_observer.extension.http11 import Response

API_VERSION = "2020-01-01"
BASE_PATH = f"/{API_VERSION}/extension"

# Header names, as the Extensions API reference spells them.
EXTENSION_NAME_HEADER = "Lambda-Extension-Name"
EXTENSION_ID_HEADER = "Lambda-Extension-Identifier"

DEFAULT_EVENTS = ("INVOKE", "SHUTDOWN")


@value
class ApiRequest:
    """One Extensions API request: method, path (under the API root), headers and body."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""


class ExtensionsApiError(Exception):
    """An Extensions API call failed; carries the endpoint, the HTTP status and the body.

    ``status`` is ``None`` when no response came (connection refused, reset, timeout).
    """

    def __init__(self, endpoint: str, status: int | None, body: str) -> None:
        self.endpoint = endpoint
        self.status = status
        self.body = body
        shown = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"{endpoint}: {shown}: {body[:300]}")


def register_request(extension_name: str, events: Sequence[str] = DEFAULT_EVENTS) -> ApiRequest:
    """``POST /extension/register`` for ``events``, under the executable's name."""
    import json  # noqa: PLC0415 (the self-registering start only: the front door registers)

    body = json.dumps({"events": list(events)}, separators=(",", ":")).encode()
    headers = ((EXTENSION_NAME_HEADER, extension_name), ("Content-Type", "application/json"))
    return ApiRequest("POST", f"{BASE_PATH}/register", headers, body)


def next_event_request(extension_id: str) -> ApiRequest:
    """``GET /extension/event/next``: blocks until Lambda has an event for the extension."""
    return ApiRequest("GET", f"{BASE_PATH}/event/next", ((EXTENSION_ID_HEADER, extension_id),))


class ExtensionsApi:
    """The Extensions API at ``AWS_LAMBDA_RUNTIME_API`` (``host:port``), kept-alive connection."""

    def __init__(self, runtime_api: str, timeout: float = 2.0) -> None:
        endpoint = parse_url(f"http://{runtime_api}")
        self.endpoint = endpoint.url
        self._connection = Connection(endpoint, connect_timeout=timeout, read_timeout=timeout)

    def call(
        self,
        request: ApiRequest,
        expected_status: int,
        *,
        blocking: bool = False,
        timeout: float | None = None,
    ) -> Response:
        """Send ``request``; the response if its status is ``expected_status``.

        Raises ``ExtensionsApiError`` otherwise, or when no response came. ``blocking`` waits for
        the response without a read timeout (``/event/next``); ``timeout`` (seconds) bounds the
        connect and the response instead of the connection's own timeouts.
        """
        try:
            response = self._connection.request(
                request.method,
                request.path,
                request.headers,
                request.body,
                read_timeout=None if blocking else (True if timeout is None else timeout),
                connect_timeout=timeout,
            )
        except HttpError as error:
            raise ExtensionsApiError(self.endpoint + request.path, None, str(error)) from None
        if response.status != expected_status:
            body = response.body.decode("utf-8", "replace")
            raise ExtensionsApiError(self.endpoint + request.path, response.status, body)
        return response

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()


class RegisteredExtension:
    """An extension Lambda registered: the only way to poll ``/event/next``."""

    def __init__(self, api: ExtensionsApi, extension_id: str) -> None:
        self.api = api
        self.extension_id = extension_id
        # The same request at every event: built once, not once per invoke.
        self._next_request = next_event_request(extension_id)

    def next_event(self) -> NextEvent:
        """Block until the next event; ``ExtensionsApiError`` or ``MalformedEventError`` if none."""
        response = self.api.call(self._next_request, 200, blocking=True)
        return parse_next_event(response.body)


def register(
    api: ExtensionsApi, extension_name: str, events: Sequence[str] = DEFAULT_EVENTS
) -> RegisteredExtension:
    """Register with Lambda; ``ExtensionsApiError`` if Lambda refuses or gives no identifier."""
    response = api.call(register_request(extension_name, events), 200)
    extension_id = response.header(EXTENSION_ID_HEADER)
    if not extension_id:
        body = response.body.decode("utf-8", "replace")
        raise ExtensionsApiError(f"{api.endpoint}{BASE_PATH}/register", 200, f"no id: {body}")
    # The body (functionName, functionVersion, handler) is informational: the configuration
    # already has them from the environment; the identifier header is what matters.
    return RegisteredExtension(api, extension_id)
