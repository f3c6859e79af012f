"""A minimal HTTP/1.1 client on ``_socket``: keep-alive, Content-Length and chunked bodies.

Why not ``http.client`` or ``urllib``: they import ``ssl`` and ``email`` when loaded, about 6 MB of
memory and tens of milliseconds at every cold start (docs/design.md). The Extensions API
is plain HTTP on a loopback address, so the extension needs no TLS at all unless the ``cloudwatch``
sink is configured; ``ssl`` is imported only when an ``https`` endpoint is used.

What it supports is what the extension needs: one request at a time on one kept-alive connection,
responses framed by Content-Length, chunked transfer coding or connection close. Anything else
(redirects, proxies, 1xx responses, pipelining) is out of scope.

Two rules keep a count from being lost or doubled:

- **One deadline per request.** ``deadline`` (a value of the connection's clock) bounds all of
  it: the DNS lookup, the connect (every address together), the TLS handshake, the write and the
  whole response. Each system call gets only the time left, and the response is read in a loop
  that checks the deadline between reads, so a server trickling one byte at a time cannot stretch
  it. ``getaddrinfo`` cannot be interrupted: a host name that is not an IP address is looked up in
  a daemon thread that is abandoned when time is up (``threading`` is imported only then, so the
  Extensions API's ``127.0.0.1`` never pays for it).
- **A request is written at most once.** An idle kept-alive connection is checked before it is
  reused, as httpcore does: readable while idle means the server closed it (EOF) or sent
  something unasked, and a fresh connection is opened instead. A failure before any byte of the
  request was written may reconnect once. Once a byte is written the request is never sent again:
  ``HttpError.sent`` tells the caller the server may have acted on it.
"""

from __future__ import annotations

import _socket
import time

from concurrency_observer.extension.frozen import value

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    import ssl
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

    # What getaddrinfo returns: (family, type, proto, canonname, sockaddr) tuples.
    AddressInfo = tuple[int, int, int, str, tuple[Any, ...]]
    Resolver = Callable[[bytes | str, int], Sequence[AddressInfo]]

_MAX_LINE = 65536
_MAX_HEADERS = 100
_MAX_BODY = 4 * 1024 * 1024  # responses here are events and error documents, a few KB at most
_RECV_SIZE = 65536
_DEFAULT_PORTS = {"http": 80, "https": 443}
# recv flags for the idle check: look without consuming, never block.
_PEEK_NOW = _socket.MSG_PEEK | _socket.MSG_DONTWAIT

_tls_context: ssl.SSLContext | None = None


class HttpError(Exception):
    """The request could not be completed: DNS, connect, TLS, timeout, reset or bad response.

    ``sent``: at least one byte of the request had been written when the failure came, so the
    server may have acted on it: sending it again could do the work twice. When ``sent`` is false
    not a byte reached the server (the lookup, the connect or the TLS handshake failed).
    """

    def __init__(self, message: str, *, sent: bool = False) -> None:
        super().__init__(message)
        self.sent = sent


@value
class Endpoint:
    """Where requests go: ``scheme://host:port`` and a path prefix (no trailing slash)."""

    scheme: str
    host: str
    port: int
    base_path: str = ""

    @property
    def host_header(self) -> str:
        """The Host header value: the port is omitted when it is the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if _DEFAULT_PORTS[self.scheme] == self.port:
            return host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The endpoint as a URL, for messages."""
        return f"{self.scheme}://{self.host_header}{self.base_path}"


def parse_url(url: str) -> Endpoint:
    """Split an ``http(s)://host[:port][/path]`` URL; raise ``ValueError`` for anything else."""
    scheme, separator, rest = url.strip().partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in _DEFAULT_PORTS:
        raise ValueError(f"not an http(s) URL: {url!r}")
    authority, slash, path = rest.partition("/")
    authority = authority.rpartition("@")[2]  # credentials in a URL are never used
    if authority.startswith("["):  # [IPv6]:port
        host, _, port_text = authority[1:].partition("]")
        port_text = port_text.removeprefix(":")
    else:
        host, _, port_text = authority.partition(":")
    if not host or any(c in host for c in " \t\r\n/?#"):
        raise ValueError(f"URL has no valid host: {url!r}")
    try:
        port = int(port_text) if port_text else _DEFAULT_PORTS[scheme]
    except ValueError:
        raise ValueError(f"URL has an invalid port: {url!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"URL has an invalid port: {url!r}")
    base_path = ("/" + path.partition("?")[0].partition("#")[0]).rstrip("/") if slash else ""
    return Endpoint(scheme, host.lower(), port, base_path)


@value
class Response:
    """A complete response; header names are lower-cased."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or ``None``."""
        wanted = name.lower()
        for key, header_value in self.headers:
            if key == wanted:
                return header_value
        return None


def _default_tls_context() -> ssl.SSLContext:
    # Imported here, not at the top: only the cloudwatch sink talks TLS (see the module docstring).
    import ssl  # noqa: PLC0415

    global _tls_context
    if _tls_context is None:
        _tls_context = ssl.create_default_context()
    return _tls_context


def _stdlib_socket(raw: _socket.socket) -> socket.socket:
    """``raw`` as the ``socket.socket`` that ``ssl`` wraps, on the same descriptor. The rest of
    this module works on ``_socket`` (``socket``'s enums cost about 4 ms at every cold start);
    ``ssl`` imports ``socket`` anyway, so only a TLS connection pays for it."""
    import socket  # noqa: PLC0415

    return socket.socket(raw.family, raw.type, raw.proto, fileno=raw.detach())


def encode_request(
    method: str, target: str, host: str, headers: Iterable[tuple[str, str]], body: bytes
) -> bytes:
    """The bytes of an HTTP/1.1 request; header names or values with CR/LF are refused."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, header_value in headers:
        if any(c in name or c in header_value for c in "\r\n") or not name:
            raise ValueError(f"invalid header {name!r}")
        lines.append(f"{name}: {header_value}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _resolve_with_getaddrinfo(host: bytes | str, port: int) -> Sequence[AddressInfo]:
    return _socket.getaddrinfo(host, port, 0, _socket.SOCK_STREAM)


def _lookup_before(
    resolver: Resolver, host: bytes | str, port: int, deadline: float, clock: Callable[[], float]
) -> Sequence[AddressInfo]:
    """``resolver(host, port)`` in a daemon thread, abandoned at ``deadline``."""
    # Imported here: only a host name (the cloudwatch sink's endpoint) needs a lookup.
    import threading  # noqa: PLC0415

    outcome: list[Sequence[AddressInfo] | OSError] = []

    def look_up() -> None:
        try:
            outcome.append(resolver(host, port))
        except OSError as error:
            outcome.append(error)
        except Exception as error:  # UnicodeError from the idna codec, say: still a failed lookup
            outcome.append(OSError(f"{type(error).__name__}: {error}"))

    thread = threading.Thread(target=look_up, name="dns-lookup", daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - clock()))
    if not outcome:  # still running: left behind, it ends with the process at the latest
        raise TimeoutError("the DNS lookup timed out")
    result = outcome[0]
    if isinstance(result, OSError):
        raise result
    return result


def _set_timeout(sock: _socket.socket, deadline: float | None, clock: Callable[[], float]) -> None:
    """Give the next socket call the time left before ``deadline`` (``None``: block)."""
    if deadline is None:
        if sock.gettimeout() is not None:  # settimeout costs a syscall; /event/next repeats None
            sock.settimeout(None)
        return
    remaining = deadline - clock()
    if remaining <= 0:
        raise TimeoutError("deadline reached")
    sock.settimeout(remaining)


def _is_idle_and_open(sock: _socket.socket) -> bool:
    """Whether a kept-alive connection can take a request: nothing to read on it right now.

    A zero-timeout peek at the raw socket (what a zero-timeout poll tells, without importing
    ``select``): EOF, a reset or unasked bytes all mean it must not be reused. For TLS, bytes
    already decrypted and waiting count as unasked too.
    """
    pending = getattr(sock, "pending", None)
    if pending is not None and pending() > 0:
        return False
    timeout = sock.gettimeout()
    if timeout is not None and timeout > 0:
        # With a timeout, CPython polls for up to that long before the recv: make it immediate.
        sock.settimeout(0.0)
    try:
        # The raw socket's recv, also for an SSLSocket (whose own recv refuses flags): peeking
        # at the encrypted bytes is enough to know whether any arrived.
        _socket.socket.recv(sock, 1, _PEEK_NOW)
    except BlockingIOError:
        return True  # nothing to read: open and idle
    except OSError:
        return False
    return False  # EOF (b"") or unasked bytes


def _as_http_error(error: BaseException, written: int, url: str) -> BaseException:
    """``error`` as the ``HttpError`` the caller sees (other exceptions are passed on as is)."""
    if isinstance(error, _NothingWritten):
        return error
    if isinstance(error, HttpError):
        error.sent = error.sent or written > 0
        return error
    if isinstance(error, TimeoutError):
        waiting = "waiting for an answer from" if written else "talking to"
        return HttpError(f"timed out {waiting} {url}", sent=written > 0)
    if isinstance(error, OSError):
        return HttpError(f"{url}: {error.strerror or error}", sent=written > 0)
    return error


class _NothingWritten(Exception):
    """Writing failed before the first byte went out: the request may go on a new connection."""


class Connection:
    """One kept-alive connection to an endpoint, opened on first use and re-opened when needed."""

    def __init__(
        self,
        endpoint: Endpoint,
        connect_timeout: float,
        read_timeout: float | None,
        tls_context: ssl.SSLContext | None = None,
        *,
        resolver: Resolver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``tls_context`` for https (default: the system's trust store, verifying hostnames).

        ``resolver`` replaces ``socket.getaddrinfo`` for host names (tests inject a slow one);
        ``clock`` is the clock deadlines are read on.
        """
        self.endpoint = endpoint
        self._host_header = endpoint.host_header  # a property: computed once, not per request
        # An ASCII host goes as bytes: a str host makes the socket module import the idna codec
        # (with unicodedata and stringprep), about 5 ms at every cold start.
        self._host: bytes | str = (
            endpoint.host.encode("ascii") if endpoint.host.isascii() else endpoint.host
        )
        self._tls_context = tls_context
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._resolver = resolver or _resolve_with_getaddrinfo
        self._clock = clock
        self._sock: _socket.socket | None = None

    def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            try:  # noqa: SIM105 (contextlib is not loaded at cold start; this code avoids it)
                sock.close()
            except OSError:
                pass

    def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        *,
        read_timeout: float | bool | None = True,
        connect_timeout: float | None = None,
        deadline: float | None = None,
    ) -> Response:
        """Send one request and read the whole response; raise ``HttpError`` on failure.

        ``deadline`` (the connection's clock) bounds everything, from the DNS lookup to the last
        byte of the response. Within it, ``connect_timeout`` (default: the connection's own)
        bounds the lookup, the connect and the TLS handshake together, and ``read_timeout``
        (``True``: the connection's own, ``None``: no bound) the write and the whole response.
        A request is never written twice (see the module docstring).
        """
        data = encode_request(method, target, self._host_header, headers, body)
        timeout = self.read_timeout if read_timeout is True else read_timeout
        connect_within = self.connect_timeout if connect_timeout is None else connect_timeout
        if self._sock is not None and not _is_idle_and_open(self._sock):
            self.close()  # the server closed it, or it holds junk: never write on it
        reused = self._sock is not None
        try:
            return self._exchange(data, method, timeout, connect_within, deadline)
        except _NothingWritten as unwritten:
            if not reused:
                raise HttpError(f"{self.endpoint.url}: {unwritten}") from None
        # The server dropped the idle connection just after the check, and not a byte went out:
        # the request may go, once, on a new connection.
        try:
            return self._exchange(data, method, timeout, connect_within, deadline)
        except _NothingWritten as unwritten:
            raise HttpError(f"{self.endpoint.url}: {unwritten}") from None

    def _exchange(
        self,
        data: bytes,
        method: str,
        timeout: float | None,
        connect_within: float,
        deadline: float | None,
    ) -> Response:
        written = 0
        try:
            sock = self._sock
            if sock is None:
                connect_deadline = self._clock() + connect_within
                if deadline is not None and deadline < connect_deadline:
                    connect_deadline = deadline
                sock = self._open(connect_deadline)
            answer_deadline = deadline
            if timeout is not None:
                answer_deadline = self._clock() + timeout
                if deadline is not None and deadline < answer_deadline:
                    answer_deadline = deadline
            view = memoryview(data)
            try:
                while written < len(data):
                    _set_timeout(sock, answer_deadline, self._clock)
                    written += sock.send(view[written:])
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as error:
                if written == 0:
                    raise _NothingWritten(error.strerror or str(error)) from None
                raise
            response, keep_alive = _read_response(
                _Reader(sock, answer_deadline, self._clock), method
            )
        except BaseException as error:
            # A half-written request or a half-read response leaves the connection unusable,
            # whatever interrupted it (a timeout, or the SIGTERM handler raising while
            # /event/next blocks).
            self.close()
            raise _as_http_error(error, written, self.endpoint.url) from None
        if not keep_alive:
            self.close()
        return response

    def _open(self, deadline: float) -> _socket.socket:
        """A connected (and for https, TLS-wrapped) socket, all of it before ``deadline``."""
        endpoint = self.endpoint
        try:
            addresses = self._addresses(deadline)
        except TimeoutError:
            raise HttpError(f"timed out resolving {endpoint.host} for {endpoint.url}") from None
        except OSError as error:
            raise HttpError(
                f"cannot resolve {endpoint.host} for {endpoint.url}: {error.strerror or error}"
            ) from None
        sock = self._connect_any(addresses, deadline)
        try:
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            if endpoint.scheme == "https":
                context = self._tls_context or _default_tls_context()
                sock = _stdlib_socket(sock)
                _set_timeout(sock, deadline, self._clock)  # the handshake as a whole
                sock = context.wrap_socket(sock, server_hostname=endpoint.host)
        except BaseException as error:
            sock.close()
            if isinstance(error, TimeoutError):
                raise HttpError(f"timed out in the TLS handshake with {endpoint.url}") from None
            if isinstance(error, OSError):  # ssl.SSLError included
                raise HttpError(f"TLS with {endpoint.url} failed: {error}") from None
            raise
        self._sock = sock
        return sock

    def _addresses(self, deadline: float) -> Sequence[AddressInfo]:
        """The addresses to try: an IP literal as is, a host name looked up before ``deadline``."""
        try:  # an IP address needs no lookup (the Extensions API's 127.0.0.1)
            return _socket.getaddrinfo(
                self._host, self.endpoint.port, 0, _socket.SOCK_STREAM, 0, _socket.AI_NUMERICHOST
            )
        except _socket.gaierror:
            pass
        return _lookup_before(self._resolver, self._host, self.endpoint.port, deadline, self._clock)

    def _connect_any(self, addresses: Sequence[AddressInfo], deadline: float) -> _socket.socket:
        """The first address that accepts a connection; all of them share ``deadline``."""
        endpoint = self.endpoint
        last_error: OSError | None = None
        for family, kind, proto, _name, address in addresses:
            sock = _socket.socket(family, kind, proto)
            try:
                _set_timeout(sock, deadline, self._clock)
                sock.connect(address)
            except TimeoutError:
                sock.close()
                raise HttpError(f"timed out connecting to {endpoint.url}") from None
            except OSError as error:
                sock.close()
                last_error = error
                continue
            except BaseException:
                sock.close()
                raise
            return sock
        reason = (last_error.strerror or str(last_error)) if last_error else "no address"
        raise HttpError(f"cannot connect to {endpoint.url}: {reason}")


class _Reader:
    """Buffered reads from a socket, each ``recv`` given only the time left before ``deadline``."""

    def __init__(
        self, sock: _socket.socket, deadline: float | None, clock: Callable[[], float]
    ) -> None:
        self._sock = sock
        self._deadline = deadline
        self._clock = clock
        self._buffer = bytearray()

    def _fill(self) -> bool:
        """Read what the server has sent; ``False`` at EOF."""
        _set_timeout(self._sock, self._deadline, self._clock)
        chunk = self._sock.recv(_RECV_SIZE)
        if not chunk:
            return False
        self._buffer += chunk
        return True

    def readline(self) -> bytes:
        """One line with its ``\\n`` (shorter at EOF, ``b""`` at EOF before any byte)."""
        searched = 0
        while True:
            end = self._buffer.find(b"\n", searched)
            if end >= 0:
                return self._take(end + 1)
            if len(self._buffer) > _MAX_LINE:
                raise HttpError("response line too long")
            searched = len(self._buffer)
            if not self._fill():
                return self._take(len(self._buffer))

    def read(self, length: int) -> bytes:
        """``length`` bytes, or fewer if the connection closes first."""
        while len(self._buffer) < length and self._fill():
            pass
        return self._take(min(length, len(self._buffer)))

    def read_to_eof(self, limit: int) -> bytes:
        """Everything until the server closes, at most ``limit`` + 1 bytes."""
        while len(self._buffer) <= limit and self._fill():
            pass
        return self._take(min(limit + 1, len(self._buffer)))

    @property
    def leftover(self) -> bool:
        """Whether bytes beyond the response arrived (the connection is then not reusable)."""
        return bool(self._buffer)

    def _take(self, count: int) -> bytes:
        taken = bytes(self._buffer[:count])
        del self._buffer[:count]
        return taken


def _read_line(reader: _Reader) -> bytes:
    line = reader.readline()
    if len(line) > _MAX_LINE:
        raise HttpError("response line too long")
    return line


def _read_response(reader: _Reader, method: str) -> tuple[Response, bool]:
    status_line = _read_line(reader)
    if not status_line:
        raise HttpError("connection closed by the server before a response")
    parts = status_line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HttpError(f"malformed status line {status_line[:80]!r}")
    status, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
    headers = _read_headers(reader)
    response_headers = tuple(headers)
    lookup = dict(headers)
    keep_alive = parts[0] == "HTTP/1.1" and lookup.get("connection", "").lower() != "close"
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        body = b""
    elif "chunked" in lookup.get("transfer-encoding", "").lower():
        body = _read_chunked(reader)
    elif "content-length" in lookup:
        length = lookup["content-length"]
        if not length.isdigit() or int(length) > _MAX_BODY:
            raise HttpError(f"bad Content-Length {length!r}")
        body = _read_exact(reader, int(length))
    else:  # framed by the server closing the connection
        body = reader.read_to_eof(_MAX_BODY)
        if len(body) > _MAX_BODY:
            raise HttpError("response body too large")
        keep_alive = False
    if reader.leftover:  # bytes nobody asked for: the next response could not be told apart
        keep_alive = False
    return Response(status, reason, response_headers, body), keep_alive


def _read_headers(reader: _Reader) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    while True:
        line = _read_line(reader)
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise HttpError("connection closed in the response headers")
        name, colon, header_value = line.decode("latin-1").partition(":")
        if not colon:
            raise HttpError(f"malformed header line {line[:80]!r}")
        headers.append((name.strip().lower(), header_value.strip()))
        if len(headers) > _MAX_HEADERS:
            raise HttpError("too many response headers")


def _read_exact(reader: _Reader, length: int) -> bytes:
    data = reader.read(length)
    if len(data) != length:
        raise HttpError(f"connection closed after {len(data)} of {length} body bytes")
    return data


def _read_chunked(reader: _Reader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_text = _read_line(reader).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise HttpError(f"malformed chunk size {size_text[:20]!r}") from None
        if size == 0:
            break
        total += size
        if total > _MAX_BODY:
            raise HttpError("response body too large")
        chunks.append(_read_exact(reader, size))
        if _read_line(reader) not in (b"\r\n", b"\n"):
            raise HttpError("malformed chunk terminator")
    while _read_line(reader) not in (b"\r\n", b"\n", b""):  # trailers, ignored
        pass
    return b"".join(chunks)
