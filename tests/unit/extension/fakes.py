"""Local stand-ins for the services the extension talks to: real HTTP servers on 127.0.0.1.

``FakeExtensionsApi`` serves register and ``/event/next`` from a script of events (then blocks,
like Lambda between events); ``ScriptedHttpServer`` answers each request with the next scripted
response (status, body) or not at all. Both record what they received.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EXTENSION_ID = "3f1c7f4e-0d3a-4c4e-9a57-0c1f2d3e4f50"
# What Lambda Managed Instances answers to an external extension registering for INVOKE.
INVALID_EVENT_TYPE_BODY = (
    b'{"errorMessage":"INVOKE: ErrorInvalidEventType","errorType":"Extension.InvalidEventType"}'
)

# What the RIE's default mode answers to a Telemetry API subscription.
TELEMETRY_NOT_SUPPORTED_BODY = b'{"errorType":"Telemetry.NotSupported"}'


@dataclass
class ReceivedRequest:
    """One request a fake server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)


class LocalServer(ThreadingHTTPServer):
    """A threaded HTTP server on 127.0.0.1 (a free port) whose handler threads never block exit."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)

    @property
    def address(self) -> str:
        """``127.0.0.1:port``."""
        return f"127.0.0.1:{self.server_address[1]}"


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, no access log, and helpers to record a request and to reply."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls between header and body

    def log_message(self, format: str, *args: object) -> None:
        pass

    def read_request(self) -> ReceivedRequest:
        """The request as received (its body read whole)."""
        length = int(self.headers.get("Content-Length") or 0)
        return ReceivedRequest(
            self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
        )

    def reply(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        """Send one whole response."""
        self.send_response(status)
        for name, header_value in (headers or {}).items():
            self.send_header(name, header_value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serving(
    server: ThreadingHTTPServer,
    *,
    release: Callable[[], None] = lambda: None,
    after_close: Callable[[], None] = lambda: None,
) -> Iterator[None]:
    """Serve in a background thread for the block; at the end ``release`` what handlers wait on,
    stop and close the server, then ``after_close`` (for waits that must see the socket closed)."""
    # A short poll interval: shutdown() waits for the loop to notice, 0.5 s by default.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        release()
        server.shutdown()
        server.server_close()
        after_close()
        thread.join(timeout=5)


class FakeExtensionsApi:
    """The Extensions API: register answers 200 with an id; /event/next plays ``events`` in order.

    An event ``{"status": 500}`` is answered with that error status, ``{"raw": "..."}`` with that
    body as is.

    After the script, /event/next blocks until ``release`` (as Lambda does between events), and
    ``waiting`` is set so a test knows the extension is blocked there.
    """

    def __init__(
        self,
        events: list[dict[str, object]],
        register_status: int = 200,
        *,
        refuse_invoke: bool = False,
        register_failures: int | None = None,
    ) -> None:
        """``refuse_invoke``: refuse a register for INVOKE as Lambda Managed Instances does.
        ``register_failures``: answer ``register_status`` that many times only, then 200."""
        self.events = list(events)
        self.register_status = register_status
        self.register_failures = register_failures
        self.refuse_invoke = refuse_invoke
        self.requests: list[ReceivedRequest] = []
        self.waiting = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        api = self

        class Handler(QuietHandler):
            def _record(self) -> ReceivedRequest:
                received = self.read_request()
                with api._lock:
                    api.requests.append(received)
                return received

            def do_POST(self) -> None:
                received = self._record()
                if received.path.endswith("/extension/register"):
                    if api.refuse_invoke and "INVOKE" in json.loads(received.body)["events"]:
                        self.reply(403, INVALID_EVENT_TYPE_BODY)
                        return
                    failing = api.register_failures is None or api.register_failures > 0
                    if api.register_status != 200 and failing:
                        if api.register_failures is not None:
                            api.register_failures -= 1
                        self.reply(api.register_status, b'{"errorType":"Forbidden"}')
                        return
                    body = json.dumps({"functionName": "fn", "functionVersion": "$LATEST"})
                    self.reply(200, body.encode(), {"Lambda-Extension-Identifier": EXTENSION_ID})
                else:  # init/error, exit/error
                    self.reply(202, b'{"status":"OK"}')

            def do_PUT(self) -> None:  # the Telemetry API: answered as the RIE's default mode does
                self._record()
                self.reply(202, TELEMETRY_NOT_SUPPORTED_BODY)

            def do_GET(self) -> None:
                self._record()
                with api._lock:
                    event = api.events.pop(0) if api.events else None
                if event is None:
                    api.waiting.set()
                    api.release.wait(30)
                    self.reply(500, b'{"errorType":"Released"}')
                    return
                if "status" in event:
                    self.reply(int(str(event["status"])), b'{"errorType":"Scripted"}')
                    return
                if "raw" in event:
                    self.reply(200, str(event["raw"]).encode())
                    return
                self.reply(200, json.dumps(event).encode())

        self._server = LocalServer(Handler)
        self.address = self._server.address

    def paths(self) -> list[str]:
        """The paths requested, in order."""
        with self._lock:
            return [r.path for r in self.requests]

    @contextmanager
    def running(self) -> Iterator[FakeExtensionsApi]:
        """Serve in a background thread for the duration of the block."""
        with serving(self._server, release=self.release.set):
            yield self


@dataclass
class Scripted:
    """One scripted answer: a status and body (after ``delay`` seconds), or ``hang`` (never)."""

    status: int = 200
    body: bytes = b""
    hang: bool = False
    delay: float = 0.0


class ScriptedHttpServer:
    """Answers each POST with the next scripted response; the last one repeats."""

    def __init__(self, script: list[Scripted]) -> None:
        self.script = list(script)
        self.requests: list[ReceivedRequest] = []
        self.stop = threading.Event()
        self.received = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                received = self.read_request()
                with server._lock:
                    server.requests.append(received)
                    answer = server.script.pop(0) if len(server.script) > 1 else server.script[0]
                server.received.set()
                if answer.hang:
                    server.stop.wait(30)
                    return
                if answer.delay:
                    time.sleep(answer.delay)
                self.reply(answer.status, answer.body, content_type="text/xml")

        self._server = LocalServer(Handler)
        self.url = f"http://{self._server.address}"

    @contextmanager
    def running(self) -> Iterator[ScriptedHttpServer]:
        """Serve in a background thread for the duration of the block."""
        with serving(self._server, release=self.stop.set):
            yield self


def aws_error(code: str, message: str = "error") -> bytes:
    """An AWS Query-protocol error document."""
    return (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
        f"<Message>{message}</Message></Error><RequestId>r</RequestId></ErrorResponse>"
    ).encode()


# How an EchoingServer puts the request it received into its answer.
ECHO_STYLES = ("aws-xml", "aws-xml-long", "plain", "json")
# The same echo disguised, each as some server or proxy writes it: redaction must see through all.
ENCODED_ECHO_STYLES = (
    "percent-lower",
    "percent-twice",
    "base64",
    "json-slash",
    "json-unicode",
    "xml-references",
)


def echo_of(request: ReceivedRequest, style: str) -> bytes:
    """An answer body that repeats ``request`` (target, headers, body) the way some servers do."""
    headers = "\n".join(f"{name}: {value}" for name, value in request.headers.items())
    dump = f"{request.method} {request.path}\n{headers}\n\n{request.body.decode(errors='replace')}"
    if style == "aws-xml":  # the token and signature, short enough for <Message> to be quoted
        token = request.headers.get("X-Amz-Security-Token", "")
        signature = request.headers.get("Authorization", "").rpartition("Signature=")[2]
        message = f"X-Amz-Security-Token={token}, Signature={signature}"
        return aws_error("AccessDenied", f"not allowed: {message}")
    if style == "aws-xml-long":  # the whole request: too long for <Message>, quoted from the top
        return aws_error("AccessDenied", dump.replace("<", "&lt;"))
    if style == "json":
        return json.dumps({"message": "denied", "request": dump}).encode()
    if style in ENCODED_ECHO_STYLES:  # the credential the request carried, disguised
        echoed = request.headers.get("X-Amz-Security-Token") or request.headers.get(
            "Authorization", ""
        )
        return aws_error("AccessDenied", encoded_echo(f"token={echoed}", style))
    return dump.encode()


def encoded_echo(dump: str, style: str) -> str:
    """``dump`` in one of ``ENCODED_ECHO_STYLES``, every character encoded where the encoding
    allows it (so even a secret of letters and digits changes its spelling)."""
    if style == "percent-lower":
        return "".join(f"%{b:02x}" for b in dump.encode())
    if style == "percent-twice":
        return "".join(f"%25{b:02X}" for b in dump.encode())
    if style == "base64":
        return base64.b64encode(b"echo: " + dump.encode()).decode()
    if style == "json-slash":
        return json.dumps(dump)[1:-1].replace("/", "\\/")
    if style == "json-unicode":
        return "".join(f"\\u{ord(c):04x}" for c in dump)
    if style == "xml-references":
        return "".join(f"&#{ord(c)};" if i % 2 else f"&#x{ord(c):x};" for i, c in enumerate(dump))
    raise ValueError(style)


class EchoingServer:
    """Answers every GET and POST with ``status`` and an echo of the request (``ECHO_STYLES``),
    as a misconfigured proxy or endpoint may: the extension must not log what it echoes."""

    def __init__(self, status: int, style: str = "plain") -> None:
        assert style in ECHO_STYLES + ENCODED_ECHO_STYLES, style
        self.status = status
        self.style = style
        self.requests: list[ReceivedRequest] = []
        echoing = self

        class Handler(QuietHandler):
            def _echo(self) -> None:
                received = self.read_request()
                echoing.requests.append(received)
                self.reply(
                    echoing.status, echo_of(received, echoing.style), content_type="text/xml"
                )

            def do_GET(self) -> None:
                self._echo()

            def do_POST(self) -> None:
                self._echo()

        self._server = LocalServer(Handler)
        self.address = self._server.address

    @contextmanager
    def running(self) -> Iterator[EchoingServer]:
        """Serve for the block."""
        with serving(self._server):
            yield self
