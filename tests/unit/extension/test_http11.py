"""The minimal HTTP/1.1 client against real sockets on 127.0.0.1."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from concurrency_observer.extension.http11 import (
    Connection,
    Endpoint,
    HttpError,
    encode_request,
    parse_url,
)


@contextmanager
def raw_server(handle: Callable[[socket.socket, int], None]) -> Iterator[Endpoint]:
    """A TCP server on 127.0.0.1 calling ``handle(conn, index)`` for each connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        index = 0
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                handle(conn, index)
            index += 1

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield Endpoint("http", "127.0.0.1", listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(2)
        listener.close()


@contextmanager
def connect(
    endpoint: Endpoint, connect_timeout: float = 1, read_timeout: float | None = 1
) -> Iterator[Connection]:
    """A client connection, closed afterwards."""
    connection = Connection(endpoint, connect_timeout, read_timeout)
    try:
        yield connection
    finally:
        connection.close()


def read_request(conn: socket.socket) -> bytes:
    """Read one request's head (these tests send no bodies)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:9001", Endpoint("http", "127.0.0.1", 9001)),
        (
            "https://monitoring.eu-west-1.amazonaws.com",
            Endpoint("https", "monitoring.eu-west-1.amazonaws.com", 443),
        ),
        ("HTTP://Host/base/", Endpoint("http", "host", 80, "/base")),
        ("http://[::1]:8080/x", Endpoint("http", "::1", 8080, "/x")),
    ],
)
def test_parse_url(url: str, expected: Endpoint) -> None:
    """URLs split into scheme, host, port and base path."""
    assert parse_url(url) == expected


@pytest.mark.parametrize(
    "url", ["ftp://x", "127.0.0.1:9001", "http://", "http://h:99999", "http://h:x"]
)
def test_parse_url_rejects(url: str) -> None:
    """Anything but an http(s) URL with a host is a ValueError."""
    with pytest.raises(ValueError, match="URL"):
        parse_url(url)


def test_host_header_omits_default_port() -> None:
    """The Host header has the port only when it is not the scheme's default."""
    assert Endpoint("https", "a", 443).host_header == "a"
    assert Endpoint("http", "a", 8080).host_header == "a:8080"


def test_encode_request_refuses_header_injection() -> None:
    """A header value with CR/LF is refused."""
    with pytest.raises(ValueError, match="header"):
        encode_request("GET", "/", "h", [("X", "a\r\nEvil: 1")], b"")


def test_content_length_and_keep_alive() -> None:
    """Two requests on one connection, both Content-Length framed."""

    def handle(conn: socket.socket, _index: int) -> None:
        for body in (b"first", b"second"):
            read_request(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    with raw_server(handle) as endpoint, connect(endpoint) as connection:
        assert connection.request("GET", "/a").body == b"first"
        assert connection.request("GET", "/b").body == b"second"


def test_chunked_response() -> None:
    """A chunked body (with an extension and a trailer) is reassembled."""

    def handle(conn: socket.socket, _index: int) -> None:
        read_request(conn)
        conn.sendall(
            b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n"
            b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
        )

    with raw_server(handle) as endpoint, connect(endpoint) as connection:
        response = connection.request("POST", "/")
    assert (response.status, response.reason, response.body) == (202, "Accepted", b"hello world")
    assert response.header("x-a") == "b"


def test_body_until_close() -> None:
    """Without Content-Length or chunking, the body runs to the connection's close."""

    def handle(conn: socket.socket, _index: int) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nall of it")

    with raw_server(handle) as endpoint, connect(endpoint) as connection:
        assert connection.request("GET", "/").body == b"all of it"


def test_stale_kept_alive_connection_is_detected_before_writing() -> None:
    """A kept-alive connection the server closed meanwhile: the request goes once, on a new one."""
    received: list[tuple[int, bytes]] = []  # (connection index, request head)

    def handle(conn: socket.socket, index: int) -> None:
        received.append((index, read_request(conn)))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d" % index)
        # then close: the client still holds the connection as kept alive

    with raw_server(handle) as endpoint, connect(endpoint) as connection:
        assert connection.request("GET", "/first").body == b"0"
        time.sleep(0.1)  # the server's FIN arrives
        assert connection.request("GET", "/second").body == b"1"
    assert [(index, head.split(b" ")[1]) for index, head in received] == [
        (0, b"/first"),
        (1, b"/second"),
    ]


def test_junk_on_an_idle_connection_means_a_new_one() -> None:
    """Bytes nobody asked for on an idle connection: not reused, the request goes on a new one."""
    received: list[int] = []

    def handle(conn: socket.socket, index: int) -> None:
        read_request(conn)
        received.append(index)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")
        if index == 0:
            time.sleep(0.05)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\njunk")
            time.sleep(0.5)  # keep it open: only the junk tells it apart

    with raw_server(handle) as endpoint, connect(endpoint) as connection:
        connection.request("GET", "/")
        time.sleep(0.2)
        assert connection.request("GET", "/").body == b"x"
    assert received == [0, 1]


def test_a_request_read_then_dropped_is_never_sent_again() -> None:
    """The server reads the request on a kept-alive connection and closes: HttpError(sent), once."""
    received: list[tuple[int, bytes]] = []

    def handle(conn: socket.socket, index: int) -> None:
        received.append((index, read_request(conn)))
        if index == 0:
            conn.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n")
            received.append((index, read_request(conn)))  # the retry: read, then dropped

    with raw_server(handle) as endpoint, connect(endpoint) as connection:
        assert connection.request("POST", "/", body=b"r").status == 503
        with pytest.raises(HttpError, match="closed by the server") as raised:
            connection.request("POST", "/", body=b"r")
        assert raised.value.sent is True
        time.sleep(0.2)  # a third request would have reached the server by now
    assert [index for index, _ in received] == [0, 0]


def test_read_timeout() -> None:
    """A server that never answers: HttpError after the read timeout, not a hang."""

    def handle(conn: socket.socket, _index: int) -> None:
        read_request(conn)
        time.sleep(1.0)

    with raw_server(handle) as endpoint, connect(endpoint, 1, 0.2) as connection:
        started = time.monotonic()
        with pytest.raises(HttpError, match="timed out"):
            connection.request("GET", "/")
        assert time.monotonic() - started < 0.9


@pytest.mark.parametrize(
    "reply",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
    ],
)
def test_malformed_responses(reply: bytes) -> None:
    """Malformed responses raise HttpError."""

    def handle(conn: socket.socket, _index: int) -> None:
        read_request(conn)
        conn.sendall(reply)

    with (
        raw_server(handle) as endpoint,
        connect(endpoint) as connection,
        pytest.raises(HttpError),
    ):
        connection.request("GET", "/")


def test_connection_refused() -> None:
    """Nothing listening: HttpError naming the endpoint."""
    with raw_server(lambda conn, index: None) as endpoint:
        pass
    with (
        connect(endpoint, 0.5, 0.5) as connection,
        pytest.raises(HttpError, match="cannot connect"),
    ):
        connection.request("GET", "/")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for ``localhost`` and its key (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@contextmanager
def tls_server(cert_file: Path, key_file: Path, body: bytes) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 answering every connection's first request with ``body``."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)

    def handle(conn: socket.socket, _index: int) -> None:
        try:
            with server_context.wrap_socket(conn, server_side=True) as tls:
                read_request(tls)
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        except (ssl.SSLError, OSError):
            pass  # the client refused the certificate

    with raw_server(handle) as endpoint:
        yield endpoint.port


def test_https_verifies_and_talks_tls(tls_files: tuple[Path, Path]) -> None:
    """https: TLS with hostname verification; a trusted certificate works end to end."""
    cert_file, key_file = tls_files
    with tls_server(cert_file, key_file, b"secure") as port:
        trusting = ssl.create_default_context(cafile=str(cert_file))
        connection = Connection(Endpoint("https", "localhost", port), 2, 2, tls_context=trusting)
        try:
            assert connection.request("GET", "/").body == b"secure"
        finally:
            connection.close()


def test_https_refuses_an_untrusted_certificate(tls_files: tuple[Path, Path]) -> None:
    """The default context (system trust store) refuses a self-signed certificate: HttpError."""
    cert_file, key_file = tls_files
    with tls_server(cert_file, key_file, b"secure") as port:
        connection = Connection(Endpoint("https", "localhost", port), 2, 2)
        try:
            with pytest.raises(HttpError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
                connection.request("GET", "/")
        finally:
            connection.close()


# -- one deadline per request -----------------------------------------------------------------

# What a busy 2-core machine may add to a deadline before the client notices it.
SLACK_S = 1.5


def test_a_trickling_server_cannot_stretch_the_deadline() -> None:
    """A server sending its response one byte every 50 ms: HttpError at the deadline."""
    stop = threading.Event()

    def handle(conn: socket.socket, _index: int) -> None:
        read_request(conn)
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 1000:
            if stop.wait(0.05):
                return
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                return

    with raw_server(handle) as endpoint, connect(endpoint, 1, None) as connection:
        started = time.monotonic()
        try:
            with pytest.raises(HttpError, match="timed out waiting for an answer") as raised:
                connection.request("GET", "/", deadline=started + 0.5)
        finally:
            stop.set()
        elapsed = time.monotonic() - started
    assert raised.value.sent is True
    assert 0.45 <= elapsed < 0.5 + SLACK_S


def test_deadline_is_checked_between_reads_on_the_injected_clock() -> None:
    """Every read costs 1 s on an injected clock: a 10-byte trickle ends at the 3 s deadline."""
    now = [0.0]
    reads: list[float] = []

    def clock() -> float:
        return now[0]

    class TickingSocket(socket.socket):
        def recv(self, size: int, flags: int = 0) -> bytes:
            data = super().recv(1, flags)  # one byte per read, as a trickling server gives
            reads.append(now[0])
            now[0] += 1.0
            return data

    def handle(conn: socket.socket, _index: int) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        time.sleep(0.5)

    with raw_server(handle) as endpoint:
        connection = Connection(endpoint, 1, None, clock=clock)
        plain = socket.create_connection(("127.0.0.1", endpoint.port))
        sock = TickingSocket(fileno=plain.detach())
        connection._sock = sock  # an open connection whose reads the clock can see
        try:
            with pytest.raises(HttpError, match="timed out"):
                connection.request("GET", "/", deadline=3.0)
        finally:
            connection.close()
    assert reads == [0.0, 1.0, 2.0]  # no read started at or after the deadline


def test_a_hanging_dns_lookup_is_abandoned_at_the_deadline() -> None:
    """An injected resolver that never returns: HttpError at the deadline, nothing sent."""
    release = threading.Event()
    calls: list[bytes | str] = []

    def hanging_resolver(host: bytes | str, port: int) -> list[Any]:
        calls.append(host)
        release.wait(30)
        raise OSError("released")

    connection = Connection(
        Endpoint("https", "monitoring.example.invalid", 443),
        5,
        5,
        resolver=hanging_resolver,
    )
    started = time.monotonic()
    try:
        with pytest.raises(HttpError, match="timed out resolving") as raised:
            connection.request("POST", "/", body=b"x", deadline=started + 0.3)
    finally:
        release.set()
    elapsed = time.monotonic() - started
    assert calls == [b"monitoring.example.invalid"]
    assert raised.value.sent is False
    assert 0.25 <= elapsed < 0.3 + SLACK_S


def test_connect_timeout_bounds_lookup_connect_and_tls_together() -> None:
    """A resolver taking 0.2 s of a 0.3 s connect timeout leaves 0.1 s for the TLS handshake."""
    handshakes: list[float] = []

    def slow_resolver(host: bytes | str, port: int) -> list[Any]:
        time.sleep(0.2)
        return socket.getaddrinfo("127.0.0.1", port, type=socket.SOCK_STREAM)

    def handle(conn: socket.socket, _index: int) -> None:
        handshakes.append(time.monotonic())
        time.sleep(1.0)  # accepts, never answers the ClientHello

    with raw_server(handle) as endpoint:
        connection = Connection(
            Endpoint("https", "cloudwatch.test", endpoint.port),
            0.3,
            5,
            resolver=slow_resolver,
        )
        started = time.monotonic()
        with pytest.raises(HttpError, match="timed out in the TLS handshake") as raised:
            connection.request("POST", "/", body=b"x")
        elapsed = time.monotonic() - started
    assert raised.value.sent is False
    assert 0.25 <= elapsed < 0.3 + SLACK_S


def test_an_ip_address_needs_no_lookup_thread() -> None:
    """127.0.0.1 is used as is: the resolver (and with it threading) is never called."""

    def refusing_resolver(host: bytes | str, port: int) -> list[Any]:
        raise AssertionError("an IP address was looked up")

    def handle(conn: socket.socket, _index: int) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

    with raw_server(handle) as endpoint:
        connection = Connection(endpoint, 1, 1, resolver=refusing_resolver)
        try:
            assert connection.request("GET", "/").status == 204
        finally:
            connection.close()


def test_a_write_failing_before_the_first_byte_reconnects_once() -> None:
    """The idle connection dies between the check and the write, no byte out: one new connection."""
    received: list[int] = []

    class DeadOnWrite(socket.socket):
        def send(self, data: Any, flags: int = 0) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    def handle(conn: socket.socket, index: int) -> None:
        if read_request(conn):  # the dead connection is closed without a byte
            received.append(index)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    with raw_server(handle) as endpoint, connect(endpoint) as connection:
        plain = socket.create_connection(("127.0.0.1", endpoint.port))
        connection._sock = DeadOnWrite(fileno=plain.detach())  # idle, open, dead on write
        assert connection.request("GET", "/").body == b"ok"
    assert received == [1]  # connection 0 (the dead one) got nothing; 1 got it once
