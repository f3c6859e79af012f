"""The Telemetry API subscription, its listener and the metadata endpoint, over real sockets."""

from __future__ import annotations

import http.client
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from concurrency_observer.extension import telemetry_listener
from concurrency_observer.extension.extensions_api import ExtensionsApi
from concurrency_observer.extension.log import Logger
from concurrency_observer.extension.metadata import METADATA_PATH, availability_zone_id
from concurrency_observer.extension.telemetry import subscribe, subscribe_request
from concurrency_observer.extension.telemetry_listener import TelemetryListener, sandbox_address
from tests.unit.extension.fakes import (
    TELEMETRY_NOT_SUPPORTED_BODY,
    LocalServer,
    QuietHandler,
    ReceivedRequest,
    serving,
)

INIT_REPORT = [
    {
        "time": "2026-01-15T10:00:00.250Z",
        "type": "platform.initReport",
        "record": {"phase": "init", "status": "success", "metrics": {"durationMs": 12.5}},
    }
]


class Answering:
    """A local server answering every request with ``status`` and ``body``; records them."""

    def __init__(self, status: int, body: bytes) -> None:
        self.requests: list[ReceivedRequest] = []
        answering = self

        class Handler(QuietHandler):
            def _answer(self) -> None:
                answering.requests.append(self.read_request())
                self.reply(status, body)

            do_GET = do_PUT = _answer

        self.server = LocalServer(Handler)

    @contextmanager
    def running(self) -> Iterator[Answering]:
        """Serve for the block."""
        with serving(self.server):
            yield self


def post(port: int, payload: bytes, *, chunked: bool = False) -> int:
    """POST ``payload`` to the listener as Lambda does; the status."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        if chunked:
            connection.request(
                "POST", "/", body=iter([payload[:7], payload[7:]]), encode_chunked=True
            )
        else:
            connection.request("POST", "/", body=payload)
        return connection.getresponse().status
    finally:
        connection.close()


def wait_for(predicate: object, timeout: float = 5.0) -> None:
    """Poll ``predicate`` until true (the listener's threads run on their own)."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_subscribe_request_body() -> None:
    """PUT /2022-07-01/telemetry: schema 2025-01-29, platform, the minimal buffering, HTTP."""
    request = subscribe_request("ext-id", 4321)
    assert (request.method, request.path) == ("PUT", "/2022-07-01/telemetry")
    assert ("Lambda-Extension-Identifier", "ext-id") in request.headers
    assert json.loads(request.body) == {
        "schemaVersion": "2025-01-29",
        "types": ["platform"],
        "buffering": {"timeoutMs": 25, "maxItems": 1000, "maxBytes": 262144},
        "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4321"},
    }


def test_subscribed_listener_takes_deliveries(tmp_path: Path) -> None:
    """Subscribed (200): deliveries posted to the port, plain or chunked, reach the account."""
    lines: list[str] = []
    with Answering(200, b"OK").running() as runtime_api:
        api = ExtensionsApi(f"127.0.0.1:{runtime_api.server.server_address[1]}")
        telemetry, note = subscribe(
            api,
            "ext-id",
            Logger(write=lines.append),
            count_invocations=False,
            hosts_file=str(tmp_path / "no-hosts"),
        )
        api.close()
    assert telemetry is not None
    assert note == "telemetry on"
    port = json.loads(runtime_api.requests[0].body)["destination"]["URI"].rsplit(":", 1)[1]
    assert int(port) == telemetry.listener.port
    assert post(telemetry.listener.port, b"[]", chunked=True) == 200
    assert post(telemetry.listener.port, json.dumps(INIT_REPORT).encode()) == 200
    facts = telemetry.account.facts(init_time_ms=0, prompt_threshold_ms=1)
    assert facts == {"initPhase": "init", "initStatus": "success", "initDurationMs": 12.5}
    assert telemetry.shutdown_note() is None
    telemetry.listener.close()
    assert lines == []


@pytest.mark.parametrize(
    ("status", "body", "note"),
    [
        (
            202,
            TELEMETRY_NOT_SUPPORTED_BODY,
            "telemetry off: the Telemetry API is not supported here",
        ),
        (
            403,
            b'{"errorType":"Telemetry.Forbidden"}\nmore',
            'telemetry off: subscription refused (HTTP 403: {"errorType":"Telemetry.Forbidden"})',
        ),
    ],
)
def test_subscription_not_taken(status: int, body: bytes, note: str, tmp_path: Path) -> None:
    """NotSupported (the RIE's default mode) or a refusal: no telemetry, the port let go."""
    with Answering(status, body).running() as runtime_api:
        api = ExtensionsApi(f"127.0.0.1:{runtime_api.server.server_address[1]}")
        telemetry, said = subscribe(
            api, "id", Logger(), count_invocations=True, hosts_file=str(tmp_path / "none")
        )
        api.close()
    assert (telemetry, said) == (None, note)
    port = json.loads(runtime_api.requests[0].body)["destination"]["URI"].rsplit(":", 1)[1]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(port)), timeout=2).close()


def test_port_taken(tmp_path: Path) -> None:
    """A configured port already in use: no subscription sent, one note."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    with Answering(200, b"").running() as runtime_api:
        api = ExtensionsApi(f"127.0.0.1:{runtime_api.server.server_address[1]}")
        telemetry, note = subscribe(
            api,
            "id",
            Logger(),
            count_invocations=True,
            port=port,
            hosts_file=str(tmp_path / "none"),
        )
        api.close()
    taken.close()
    assert telemetry is None
    assert note.startswith(f"telemetry off: cannot listen on 127.0.0.1:{port} (")
    assert runtime_api.requests == []


def test_listener_keep_alive_and_bad_requests() -> None:
    """Two requests on one connection are both answered; an oversized one closes it."""
    bodies: list[bytes] = []
    listener = TelemetryListener("127.0.0.1", 0, bodies.append)
    listener.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=5)
        for payload in (b"[1]", b"[2]"):
            connection.request("POST", "/", body=payload)
            assert connection.getresponse().read() == b""
        connection.close()
        with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as raw:
            raw.sendall(b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n")
            assert raw.recv(100) == b""  # closed, unanswered
        assert bodies == [b"[1]", b"[2]"]
    finally:
        listener.close()


def test_a_failing_consumer_still_answers() -> None:
    """A bug in the consumer of a body: answered 200 all the same, nothing raised."""

    def broken(_body: bytes) -> None:
        raise RuntimeError("bug")

    listener = TelemetryListener("127.0.0.1", 0, broken)
    listener.start()
    try:
        assert post(listener.port, b"[]") == 200
        wait_for(lambda: listener.requests == 1)
    finally:
        listener.close()


def test_sandbox_address(tmp_path: Path) -> None:
    """sandbox.localdomain's address from the hosts file, else the loopback address."""
    hosts = tmp_path / "hosts"
    hosts.write_text(
        "# comment sandbox.localdomain\n127.0.0.1 localhost\n"
        "169.254.100.1 sandbox.localdomain sandbox\n"
    )
    assert sandbox_address(str(hosts)) == "169.254.100.1"
    hosts.write_text("::1 sandbox.localdomain\n")
    assert sandbox_address(str(hosts), lookup=lambda: None) == "127.0.0.1"
    assert sandbox_address(str(tmp_path / "missing"), lookup=lambda: None) == "127.0.0.1"


def test_sandbox_address_from_the_resolver_within_its_bound(tmp_path: Path) -> None:
    """Not in the hosts file: the resolver's IPv4 answer; a silent, failing or odd resolver
    gives the loopback address once the bound has passed."""
    missing = str(tmp_path / "missing")
    assert sandbox_address(missing, lookup=lambda: "169.254.100.1") == "169.254.100.1"
    release = threading.Event()

    def silent() -> str:
        release.wait(30)
        return "10.0.0.1"

    def failing() -> str:
        raise OSError("Name or service not known")

    try:
        assert sandbox_address(missing, timeout=0.05, lookup=silent) == "127.0.0.1"
    finally:
        release.set()
    assert sandbox_address(missing, lookup=failing) == "127.0.0.1"
    assert sandbox_address(missing, lookup=lambda: "fe80::1") == "127.0.0.1"


def test_availability_zone() -> None:
    """GET the metadata endpoint with the bearer token; its AvailabilityZoneID."""
    with Answering(200, b'{"AvailabilityZoneID": "use1-az4"}').running() as endpoint:
        address = f"127.0.0.1:{endpoint.server.server_address[1]}"
        environ = {"AWS_LAMBDA_METADATA_API": address, "AWS_LAMBDA_METADATA_TOKEN": "tok"}
        assert availability_zone_id(environ, 2.0) == "use1-az4"
    (request,) = endpoint.requests
    assert (request.method, request.path) == ("GET", METADATA_PATH)
    assert request.headers["Authorization"] == "Bearer tok"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, b'{"AvailabilityZoneID": "x"}'),
        (200, b"[]"),
        (200, b"{"),
        (200, b'{"AvailabilityZoneID": 3}'),
    ],
)
def test_availability_zone_unknown(status: int, body: bytes) -> None:
    """An error status or an unreadable answer: no zone."""
    with Answering(status, body).running() as endpoint:
        address = f"127.0.0.1:{endpoint.server.server_address[1]}"
        environ = {"AWS_LAMBDA_METADATA_API": address, "AWS_LAMBDA_METADATA_TOKEN": "tok"}
        assert availability_zone_id(environ, 2.0) is None


def test_availability_zone_skipped() -> None:
    """Without both variables (or with no time left) nothing is asked."""
    assert availability_zone_id({}, 1.0) is None
    assert availability_zone_id({"AWS_LAMBDA_METADATA_API": "127.0.0.1:9"}, 1.0) is None
    environ = {"AWS_LAMBDA_METADATA_API": "127.0.0.1:9", "AWS_LAMBDA_METADATA_TOKEN": "t"}
    assert availability_zone_id(environ, 0.0) is None
    assert availability_zone_id(environ, 0.5) is None  # nothing listens: no answer, no zone


def test_silent_listener_thread_is_daemon() -> None:
    """The listener never holds the process: its threads are not threading's non-daemon ones."""
    listener = TelemetryListener("127.0.0.1", 0, lambda _b: None)
    listener.start()
    assert all(t.daemon for t in threading.enumerate() if t is not threading.main_thread())
    listener.close()


def test_a_silent_runtime_api_bounds_the_subscription(tmp_path: Path) -> None:
    """A Runtime API that accepts and never answers: no telemetry after the timeout, one note."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        api = ExtensionsApi(f"127.0.0.1:{silent.getsockname()[1]}")
        began = time.monotonic()
        telemetry, note = subscribe(
            api,
            "id",
            Logger(),
            count_invocations=True,
            timeout=0.2,
            hosts_file=str(tmp_path / "none"),
        )
        waited = time.monotonic() - began
        api.close()
    finally:
        silent.close()
    assert telemetry is None
    assert note.startswith("telemetry off: subscription refused (no response")
    assert waited < 10  # bounded by the timeout, not by the API's own 2 s (loose: a busy host)


def test_settle_waits_only_for_what_is_on_its_way(tmp_path: Path) -> None:
    """No init report yet: up to the limit in 5 ms steps; once reported, not at all."""
    with Answering(200, b"OK").running() as runtime_api:
        api = ExtensionsApi(f"127.0.0.1:{runtime_api.server.server_address[1]}")
        telemetry, _note = subscribe(
            api, "id", Logger(), count_invocations=False, hosts_file=str(tmp_path / "none")
        )
        api.close()
    assert telemetry is not None
    pauses: list[float] = []
    telemetry.settle(0.05, pauses.append)
    assert len(pauses) == 10  # 50 ms in 5 ms steps, then what has arrived is used
    assert telemetry.shutdown_note() == "telemetry: no platform event arrived (0 deliveries)"
    assert post(telemetry.listener.port, json.dumps(INIT_REPORT).encode()) == 200
    pauses.clear()
    telemetry.settle(0.05, pauses.append)
    assert pauses == []
    assert telemetry.shutdown_note() is None
    telemetry.listener.close()


def test_a_thousand_stalled_connections_cost_no_thread_and_block_nothing() -> None:
    """1,000 peers connected at once, half stalled mid-header: one serving thread, at most
    MAX_CONNECTIONS held, and a genuine delivery after them is answered and reaches the account."""
    bodies: list[bytes] = []
    listener = TelemetryListener("127.0.0.1", 0, bodies.append)
    threads_before = len(sys._current_frames())  # every thread, _thread's included
    listener.start()
    stalled: list[socket.socket] = []
    try:
        for i in range(1000):
            peer = socket.create_connection(("127.0.0.1", listener.port), timeout=30)
            if i % 2:
                peer.sendall(b"POST / HTTP/1.1\r\nContent-Len")  # and never the rest
            stalled.append(peer)
        assert post(listener.port, json.dumps(INIT_REPORT).encode()) == 200
        assert bodies == [json.dumps(INIT_REPORT).encode()]
        assert listener.open_connections() <= telemetry_listener.MAX_CONNECTIONS
        assert serving_threads(listener) == 1
        assert len(sys._current_frames()) <= threads_before + 1  # others may have ended
    finally:
        for peer in stalled:
            peer.close()
        listener.close()


def serving_threads(listener: TelemetryListener) -> int:
    """Threads running ``listener``'s loop, from every thread's current frame."""
    return sum(1 for frame in sys._current_frames().values() if _serves(frame, listener))


def _serves(frame: object, listener: TelemetryListener) -> bool:
    while frame is not None:
        code = getattr(frame, "f_code", None)
        if getattr(code, "co_name", None) == "_serve_forever":
            return getattr(frame, "f_locals", {}).get("self") is listener
        frame = getattr(frame, "f_back", None)
    return False


def test_a_peer_past_its_request_deadline_is_closed() -> None:
    """Half a request, then silence: closed once the (injected) clock passes the deadline."""
    now = [100.0]
    listener = TelemetryListener("127.0.0.1", 0, lambda _b: None, clock=lambda: now[0])
    listener.start()
    try:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as slow:
            slow.sendall(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345")
            # Read, not only accepted: the deadline runs from the clock when the bytes are read.
            wait_for(lambda: listener.requests_in_progress() == 1)
            now[0] += telemetry_listener.REQUEST_DEADLINE + 1
            assert slow.recv(100) == b""  # closed, unanswered
        assert listener.dropped == 1
        # An idle kept-alive connection: kept until the idle timeout, then closed.
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as idle:
            wait_for(lambda: listener.open_connections() == 1)
            now[0] += telemetry_listener.REQUEST_DEADLINE + 1
            assert post(listener.port, b"[]") == 200  # served meanwhile
            assert listener.open_connections() >= 1
            now[0] += telemetry_listener.IDLE_TIMEOUT + 1
            assert idle.recv(100) == b""
    finally:
        listener.close()


def test_chunked_and_pipelined_requests_are_each_answered() -> None:
    """A chunked body, then two requests sent in one write: three answers, three bodies."""
    bodies: list[bytes] = []
    listener = TelemetryListener("127.0.0.1", 0, bodies.append)
    listener.start()
    try:
        assert post(listener.port, b'[{"chunked": true}]', chunked=True) == 200
        with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as raw:
            two = b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n[1]" * 2
            raw.sendall(two)
            answers = b""
            while answers.count(b"200 OK") < 2:
                answers += raw.recv(1000)
        assert bodies == [b'[{"chunked": true}]', b"[1]", b"[1]"]
    finally:
        listener.close()
