"""The Telemetry API's destination: a minimal HTTP server on daemon threads, socket module only.

Not ``http.server``: importing it (with ``socketserver``, ``email``, ``html``, ``mimetypes``)
costs about 25 ms of CPU and more than a megabyte at every cold start (docs/benchmarks.md,
"The Telemetry listener"), for a server that only takes POSTs from Lambda and answers 200. Not
``threading`` either: ``_thread`` starts the threads, and they never hold the process up at exit.

Each accepted connection gets its own thread (Lambda may open several and keep them alive); each
request's body goes to ``on_body`` and is answered ``200`` with an empty body, whatever it holds
(a delivery that cannot be read is the account's business, not a reason for Lambda to retry).
A request that is not HTTP, or larger than ``MAX_BODY``, closes its connection.

Bound to the address ``sandbox.localdomain`` has: in ``/etc/hosts`` (no DNS lookup on the init
path), else from the resolver within 100 ms, else 127.0.0.1, where the RIE posts; never to every
interface.
"""

from __future__ import annotations

import _thread
import socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

SANDBOX_HOST = "sandbox.localdomain"
LOOPBACK = "127.0.0.1"
HOSTS_FILE = "/etc/hosts"
LOOKUP_TIMEOUT = 0.1  # seconds: the resolver is asked only when the hosts file has no answer
MAX_HEADER = 16 * 1024
# Lambda caps a delivery at the subscription's maxBytes (256 KiB asked); room for JSON overhead.
MAX_BODY = 1024 * 1024
_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def sandbox_address(
    hosts_file: str = HOSTS_FILE,
    timeout: float = LOOKUP_TIMEOUT,
    lookup: Callable[[], str | None] | None = None,
) -> str:
    """The IPv4 address ``sandbox.localdomain`` has: in ``hosts_file``, else from the resolver
    within ``timeout`` seconds (a lookup left running ends with the process), else 127.0.0.1."""
    try:
        with open(hosts_file, encoding="utf-8", errors="replace") as hosts:
            for line in hosts:
                words = line.split("#", 1)[0].split()
                if len(words) > 1 and SANDBOX_HOST in words[1:] and _is_ipv4(words[0]):
                    return words[0]
    except OSError:
        pass
    found = _bounded(lookup or _resolve_sandbox, timeout)
    return found if found is not None and _is_ipv4(found) else LOOPBACK


def _resolve_sandbox() -> str | None:
    # Bytes, not str: a str host makes the socket module import the idna codec (about 5 ms).
    answers = socket.getaddrinfo(SANDBOX_HOST.encode(), None, socket.AF_INET)
    return str(answers[0][4][0]) if answers else None


def _bounded(lookup: Callable[[], str | None], timeout: float) -> str | None:
    """``lookup()`` on a thread of its own, its answer if it comes within ``timeout``."""
    found: list[str | None] = []
    done = _thread.allocate_lock()
    done.acquire()

    def run() -> None:
        try:
            found.append(lookup())
        except Exception:  # noqa: S110 (no answer is an answer: the fallback address)
            pass
        finally:
            done.release()

    try:
        _thread.start_new_thread(run, ())
    except RuntimeError:
        return None
    done.acquire(True, max(0.0, timeout))
    return found[0] if found else None


def _is_ipv4(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and all(p.isascii() and p.isdigit() and int(p) < 256 for p in parts)


class TelemetryListener:
    """A bound listening socket; ``start`` serves it on a daemon thread, ``port`` is its port."""

    def __init__(self, address: str, port: int, on_body: Callable[[bytes], object]) -> None:
        """Bind now (``OSError`` if the port is taken): a subscription must name a live port."""
        self.on_body = on_body
        self.requests = 0
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            server.bind((address, port))
            server.listen(8)
        except OSError:
            server.close()
            raise
        self._server = server
        self.port: int = server.getsockname()[1]

    def start(self) -> None:
        """Accept connections on a daemon thread."""
        _thread.start_new_thread(self._accept_forever, ())

    def close(self) -> None:
        """Stop accepting (tests; in Lambda the process's exit does it)."""
        try:  # noqa: SIM105 (contextlib is not loaded at cold start; this code avoids it)
            self._server.close()
        except OSError:
            pass

    def _accept_forever(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return  # closed
            try:
                _thread.start_new_thread(self._serve, (connection,))
            except RuntimeError:  # cannot start a thread: serve it here, in turn
                self._serve(connection)

    def _serve(self, connection: socket.socket) -> None:
        """Answer the connection's requests until it closes; a bad one closes it."""
        pending = b""
        try:
            while True:
                body, pending = _read_request(connection, pending)
                if body is None:
                    return
                self.requests += 1
                try:
                    self.on_body(body)
                finally:
                    connection.sendall(_OK)
        except Exception:  # noqa: S110 (a broken delivery must not cost more than itself)
            pass
        finally:
            connection.close()


def _read_until(connection: socket.socket, pending: bytes, marker: bytes) -> bytes | None:
    """``pending`` extended until it holds ``marker``; ``None`` at EOF or past ``MAX_HEADER``."""
    while marker not in pending:
        chunk = connection.recv(65536)
        if not chunk or len(pending) > MAX_HEADER:
            return None
        pending += chunk
    return pending


def _read_at_least(connection: socket.socket, pending: bytes, size: int) -> bytes | None:
    """``pending`` extended to at least ``size`` bytes; ``None`` at EOF."""
    while len(pending) < size:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        pending += chunk
    return pending


def _read_request(connection: socket.socket, pending: bytes) -> tuple[bytes | None, bytes]:
    """One request's body and the bytes read past it; ``None`` at EOF or on a request refused."""
    read = _read_until(connection, pending, b"\r\n\r\n")
    if read is None:
        return None, b""
    head, pending = read.split(b"\r\n\r\n", 1)
    length = _body_length(head)
    if length == _CHUNKED:
        return _read_chunked(connection, pending)
    if length is None or length > MAX_BODY:
        return None, b""
    read = _read_at_least(connection, pending, length)
    if read is None:
        return None, b""
    return read[:length], read[length:]


_CHUNKED = -1


def _body_length(head: bytes) -> int | None:
    """The body's length from the headers (0 without one), ``_CHUNKED``, or ``None`` if bad."""
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, raw = line.partition(b":")
        name, raw = name.strip().lower(), raw.strip()
        if name == b"transfer-encoding" and b"chunked" in raw.lower():
            return _CHUNKED
        if name == b"content-length":
            if not raw.isdigit() or len(raw) > 12:
                return None
            length = int(raw)
    return length


def _read_chunked(connection: socket.socket, pending: bytes) -> tuple[bytes | None, bytes]:
    """A chunked body (what Go's client sends when it does not know the length)."""
    body = b""
    while True:
        read = _read_until(connection, pending, b"\r\n")
        if read is None:
            return None, b""
        size_line, pending = read.split(b"\r\n", 1)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            return None, b""
        if size < 0 or len(body) + size > MAX_BODY:
            return None, b""
        read = _read_at_least(connection, pending, size + 2)
        if read is None:
            return None, b""
        pending = read
        body += pending[:size]
        pending = pending[size + 2 :]
        if size == 0:
            # The trailer section ends at an empty line; the chunk's CRLF was that line when no
            # trailer was sent.
            return body, pending
