"""The Telemetry API's destination: a minimal HTTP server on one daemon thread, one poll loop.

Not ``http.server``: importing it (with ``socketserver``, ``email``, ``html``, ``mimetypes``)
costs about 25 ms of CPU and more than a megabyte at every cold start (docs/benchmarks.md,
"The Telemetry listener"), for a server that only takes POSTs from Lambda and answers 200. Not
``threading`` either: ``_thread`` starts the threads, and they never hold the process up at exit.
Not ``socket``: ``_socket`` serves (``socket`` builds its enums at import, about 4 ms of the
init path, see ``http11``).

One thread serves every connection (Lambda may open several and keep them alive), with
non-blocking sockets and ``select.poll``: a thread per connection cost a thread and about 20 KB
each (1,000 connections: 1,002 threads, +21 MB), and under Lambda's cap of 1,024 threads a
stalled peer then blocked the accept. Each request's body goes to ``on_body`` and is answered
``200`` with an empty body, whatever it holds (a delivery that cannot be read is the account's
business, not a reason for Lambda to retry). A request that is not HTTP, or larger than
``MAX_BODY``, closes its connection.

Bounded whatever the peers do: at most ``MAX_CONNECTIONS`` open (a new one closes the one idle
the longest, so a genuine delivery is never locked out by stalled ones), ``REQUEST_DEADLINE``
seconds from a request's first byte to its last, ``IDLE_TIMEOUT`` for a kept-alive connection
with no request, and ``MAX_BUFFERED`` bytes read ahead over all of them (the largest holder is
closed past it). Accepting never waits on a peer: every socket is non-blocking.

Bound to the address ``sandbox.localdomain`` has: in ``/etc/hosts`` (no DNS lookup on the init
path), else from the resolver within 100 ms, else 127.0.0.1, where the RIE posts; never to every
interface.
"""

from __future__ import annotations

import _socket
import _thread
import select
from time import monotonic

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
MAX_CONNECTIONS = 32  # open at once; Lambda uses a few
REQUEST_DEADLINE = 5.0  # seconds from a request's first byte to its last
IDLE_TIMEOUT = 600.0  # seconds a kept-alive connection may wait for its next request
MAX_BUFFERED = 4 * MAX_BODY  # bytes read and not yet a whole request, over every connection
TICK = 0.25  # seconds between looks at the deadlines (and at close()) when nothing happens
_READ_SIZE = 65536


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
    answers = _socket.getaddrinfo(SANDBOX_HOST.encode(), None, _socket.AF_INET)
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


class _Peer:
    """One connection: what it sent that is not a whole request yet, and when."""

    __slots__ = ("connection", "last", "pending", "since")

    def __init__(self, connection: _socket.socket, now: float) -> None:
        self.connection = connection
        self.pending = b""
        self.since: float | None = None  # when the request being read began; None when idle
        self.last = now  # the last time it sent anything, or was accepted


class TelemetryListener:
    """A bound listening socket; ``start`` serves it on one daemon thread, ``port`` is its port."""

    def __init__(
        self,
        address: str,
        port: int,
        on_body: Callable[[bytes], object],
        clock: Callable[[], float] = monotonic,
    ) -> None:
        """Bind now (``OSError`` if the port is taken): a subscription must name a live port."""
        self.on_body = on_body
        self.requests = 0
        self.dropped = 0  # connections closed by a bound (deadline, idle, count, memory)
        self._clock = clock
        self._closed = False
        self._peers: dict[int, _Peer] = {}
        server = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        try:
            server.bind((address, port))
            server.listen(64)
            server.setblocking(False)
        except OSError:
            server.close()
            raise
        self._server = server
        self.port: int = server.getsockname()[1]

    def start(self) -> None:
        """Serve on a daemon thread (``RuntimeError`` if no thread can be started)."""
        _thread.start_new_thread(self._serve_forever, ())

    def close(self) -> None:
        """Stop serving within ``TICK`` (tests; in Lambda the process's exit does it)."""
        self._closed = True
        try:  # noqa: SIM105 (contextlib is not loaded at cold start; this code avoids it)
            self._server.close()
        except OSError:
            pass

    def open_connections(self) -> int:
        """Connections open now (tests, benchmarks)."""
        return len(self._peers)

    def requests_in_progress(self) -> int:
        """Connections with part of a request read, its deadline running (tests)."""
        return sum(1 for peer in list(self._peers.values()) if peer.since is not None)

    def _serve_forever(self) -> None:
        poller = select.poll()
        try:
            listening = self._server.fileno()
            poller.register(listening, select.POLLIN)
        except (OSError, ValueError):
            return  # closed before it started
        while not self._closed:
            try:
                ready = poller.poll(TICK * 1000)
            except OSError:
                continue
            now = self._clock()
            for fd, _ in ready:
                try:
                    if fd == listening:
                        self._accept(poller, now)
                    else:
                        self._read(poller, fd, now)
                except Exception:  # a broken peer must not stop the loop: it is closed
                    self._drop(poller, fd)
            self._expire(poller, now)
        for fd in list(self._peers):
            self._drop(poller, fd)

    def _accept(self, poller: select.poll, now: float) -> None:
        """The connections waiting, at most half of ``MAX_CONNECTIONS`` at a time (the ones
        accepted read their requests before more come in); past ``MAX_CONNECTIONS``, the one
        quiet the longest is closed."""
        for _ in range(MAX_CONNECTIONS // 2):
            try:
                # _socket's accept gives a descriptor (close-on-exec), as socket.accept wraps it.
                fd, _ = self._server._accept()  # type: ignore[attr-defined]
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # closed, or out of descriptors: the next tick tries again
            connection = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM, 0, fd)
            connection.setblocking(False)
            if len(self._peers) >= MAX_CONNECTIONS:
                oldest = min(self._peers.values(), key=lambda peer: peer.last)
                self._drop(poller, oldest.connection.fileno(), bounded=True)
            fd = connection.fileno()
            self._peers[fd] = _Peer(connection, now)
            poller.register(fd, select.POLLIN)

    def _read(self, poller: select.poll, fd: int, now: float) -> None:
        """What the peer sent; each whole request in it passed on and answered."""
        peer = self._peers.get(fd)
        if peer is None:
            poller.unregister(fd)
            return
        try:
            chunk = peer.connection.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        if not chunk:
            self._drop(poller, fd)
            return
        peer.pending += chunk
        peer.last = now
        if peer.since is None:
            peer.since = now
        while peer.pending:
            taken = _take_request(peer.pending)
            if taken is None:  # not whole yet
                self._bound_buffers(poller)
                return
            if isinstance(taken, _Bad):
                self._drop(poller, fd)
                return
            body, peer.pending = taken
            self.requests += 1
            try:  # noqa: SIM105 (contextlib is not loaded at cold start)
                self.on_body(body)
            except Exception:  # noqa: S110 (a broken delivery must not cost more than itself)
                pass
            # 38 bytes to a socket that has room: sent whole, or the peer is not reading.
            if peer.connection.send(_OK) != len(_OK):
                self._drop(poller, fd)
                return
        peer.since = None

    def _bound_buffers(self, poller: select.poll) -> None:
        """Past ``MAX_BUFFERED`` read ahead in all, the connection holding most is closed."""
        if sum(len(peer.pending) for peer in self._peers.values()) > MAX_BUFFERED:
            largest = max(self._peers.values(), key=lambda peer: len(peer.pending))
            self._drop(poller, largest.connection.fileno(), bounded=True)

    def _expire(self, poller: select.poll, now: float) -> None:
        """Close the connections past their request deadline or their idle time."""
        for fd, peer in list(self._peers.items()):
            if peer.since is not None:
                late = now - peer.since > REQUEST_DEADLINE
            else:
                late = now - peer.last > IDLE_TIMEOUT
            if late:
                self._drop(poller, fd, bounded=True)

    def _drop(self, poller: select.poll, fd: int, *, bounded: bool = False) -> None:
        peer = self._peers.pop(fd, None)
        try:  # noqa: SIM105
            poller.unregister(fd)
        except (KeyError, ValueError, OSError):
            pass
        if peer is not None:
            self.dropped += bounded
            peer.connection.close()


class _Bad:
    """A request refused: the connection is closed unanswered."""


_BAD = _Bad()


def _take_request(pending: bytes) -> tuple[bytes, bytes] | _Bad | None:
    """The first request's body in ``pending`` and the bytes past it; ``None`` while it is not
    whole; ``_BAD`` for a request refused (no length, too large, a header past ``MAX_HEADER``)."""
    head_end = pending.find(b"\r\n\r\n")
    if head_end < 0:
        return _BAD if len(pending) > MAX_HEADER else None
    if head_end > MAX_HEADER:
        return _BAD
    start = head_end + 4
    length = _body_length(pending[:head_end])
    if length == _CHUNKED:
        return _take_chunked(pending, start)
    if length is None or length > MAX_BODY:
        return _BAD
    if len(pending) - start < length:
        return None
    return pending[start : start + length], pending[start + length :]


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


def _take_chunked(pending: bytes, at: int) -> tuple[bytes, bytes] | _Bad | None:
    """A chunked body from ``pending[at:]`` (what Go's client sends when it does not know the
    length), as ``_take_request`` answers."""
    parts: list[bytes] = []
    size_total = 0
    while True:
        line_end = pending.find(b"\r\n", at)
        if line_end < 0:
            return _BAD if len(pending) - at > MAX_HEADER else None
        try:
            size = int(pending[at:line_end].split(b";", 1)[0].strip(), 16)
        except ValueError:
            return _BAD
        size_total += size
        if size < 0 or size_total > MAX_BODY:
            return _BAD
        data = line_end + 2
        if len(pending) < data + size + 2:
            return None
        parts.append(pending[data : data + size])
        at = data + size + 2
        if size == 0:
            # The trailer section ends at an empty line; the chunk's CRLF was that line when no
            # trailer was sent.
            return b"".join(parts), pending[at:]
