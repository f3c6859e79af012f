"""A minimal HTTP/1.1 client on ``socket``: keep-alive, Content-Length and chunked bodies.

Why not ``http.client`` or ``urllib``: they import ``ssl`` and ``email`` when loaded, about 6 MB of
memory and tens of milliseconds at every cold start (docs/design.md). The Extensions API
is plain HTTP on a loopback address, so the extension needs no TLS at all unless the ``cloudwatch``
sink is configured; ``ssl`` is imported only when an ``https`` endpoint is used.

What it supports is what the extension needs: one request at a time on one kept-alive connection,
responses framed by Content-Length, chunked transfer coding or connection close, a connect timeout
and a per-read timeout (``None`` blocks: the Extensions API's ``/event/next`` waits until an
event). Anything else (redirects, proxies, 1xx responses, pipelining) is out of scope.
"""

from __future__ import annotations

import socket

from concurrency_observer.extension.frozen import value

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterable
    from typing import BinaryIO

_MAX_LINE = 65536
_MAX_HEADERS = 100
_MAX_BODY = 4 * 1024 * 1024  # responses here are events and error documents, a few KB at most
_DEFAULT_PORTS = {"http": 80, "https": 443}

_tls_context: ssl.SSLContext | None = None


class HttpError(Exception):
    """The request could not be completed: connect failure, timeout, reset or malformed response.

    ``sent``: the whole request had been written when the failure came (a timeout or a reset
    while waiting for the answer), so the server may have acted on it: re-sending it could do
    the work twice.
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


class Connection:
    """One kept-alive connection to an endpoint, opened on first use and re-opened when needed."""

    def __init__(
        self,
        endpoint: Endpoint,
        connect_timeout: float,
        read_timeout: float | None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        """``tls_context`` for https (default: the system's trust store, verifying hostnames)."""
        self.endpoint = endpoint
        self._host_header = endpoint.host_header  # a property: computed once, not per request
        self._tls_context = tls_context
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._sock: socket.socket | None = None
        self._file: BinaryIO | None = None

    def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        file, sock = self._file, self._sock
        self._file = self._sock = None
        for closable in (file, sock):
            if closable is not None:
                try:  # noqa: SIM105 (contextlib is not loaded at cold start; this code avoids it)
                    closable.close()
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
    ) -> Response:
        """Send one request and read the whole response; raise ``HttpError`` on transport failure.

        ``read_timeout``: seconds for each read, ``None`` to block, ``True`` (default) for the
        connection's own. ``connect_timeout``: seconds, default the connection's own.
        A kept-alive connection the server closed meanwhile is re-opened once, transparently.
        """
        data = encode_request(method, target, self._host_header, headers, body)
        timeout = self.read_timeout if read_timeout is True else read_timeout
        reused = self._sock is not None
        try:
            return self._exchange(data, method, timeout, connect_timeout)
        except _StaleConnection:
            if not reused:
                raise HttpError("connection closed by the server before a response") from None
            return self._exchange(data, method, timeout, connect_timeout)

    def _exchange(
        self, data: bytes, method: str, timeout: float | None, connect_timeout: float | None
    ) -> Response:
        sent = False
        try:
            file = self._connect(connect_timeout)
            sock = self._sock
            assert sock is not None
            if sock.gettimeout() != timeout:  # settimeout is a syscall; /event/next repeats None
                sock.settimeout(timeout)
            try:
                sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                raise _StaleConnection from None
            sent = True
            response, keep_alive = _read_response(file, method)
        except BaseException as error:
            # A half-read response leaves the connection unusable, whatever interrupted it
            # (a timeout, or the SIGTERM handler raising while /event/next blocks).
            self.close()
            if isinstance(error, _StaleConnection | HttpError):
                raise
            if isinstance(error, TimeoutError):
                waiting = "waiting for an answer from" if sent else "talking to"
                raise HttpError(f"timed out {waiting} {self.endpoint.url}", sent=sent) from None
            if isinstance(error, OSError):
                raise HttpError(
                    f"{self.endpoint.url}: {error.strerror or error}", sent=sent
                ) from None
            raise
        if not keep_alive:
            self.close()
        return response

    def _connect(self, connect_timeout: float | None) -> BinaryIO:
        if self._file is not None:
            return self._file
        endpoint = self.endpoint
        timeout = self.connect_timeout if connect_timeout is None else connect_timeout
        # An ASCII host goes as bytes: a str host makes the socket module import the idna codec
        # (with unicodedata and stringprep), about 5 ms at every cold start.
        host = endpoint.host.encode("ascii") if endpoint.host.isascii() else endpoint.host
        try:
            sock = socket.create_connection((host, endpoint.port), timeout=timeout)  # type: ignore[arg-type]
        except TimeoutError:
            raise HttpError(f"timed out connecting to {endpoint.url}") from None
        except OSError as error:
            raise HttpError(
                f"cannot connect to {endpoint.url}: {error.strerror or error}"
            ) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if endpoint.scheme == "https":
                context = self._tls_context or _default_tls_context()
                sock = context.wrap_socket(sock, server_hostname=endpoint.host)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        file: BinaryIO = sock.makefile("rb")
        self._file = file
        return file


class _StaleConnection(Exception):
    """The server closed a kept-alive connection before answering: safe to retry once."""


def _read_line(file: BinaryIO) -> bytes:
    line = file.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise HttpError("response line too long")
    return line


def _read_response(file: BinaryIO, method: str) -> tuple[Response, bool]:
    try:
        status_line = _read_line(file)
    except (ConnectionResetError, BrokenPipeError):
        raise _StaleConnection from None
    if not status_line:
        raise _StaleConnection
    parts = status_line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HttpError(f"malformed status line {status_line[:80]!r}")
    status, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
    headers = _read_headers(file)
    response_headers = tuple(headers)
    lookup = dict(headers)
    keep_alive = parts[0] == "HTTP/1.1" and lookup.get("connection", "").lower() != "close"
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        body = b""
    elif "chunked" in lookup.get("transfer-encoding", "").lower():
        body = _read_chunked(file)
    elif "content-length" in lookup:
        length = lookup["content-length"]
        if not length.isdigit() or int(length) > _MAX_BODY:
            raise HttpError(f"bad Content-Length {length!r}")
        body = _read_exact(file, int(length))
    else:  # framed by the server closing the connection
        body = file.read(_MAX_BODY + 1)
        if len(body) > _MAX_BODY:
            raise HttpError("response body too large")
        keep_alive = False
    return Response(status, reason, response_headers, body), keep_alive


def _read_headers(file: BinaryIO) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    while True:
        line = _read_line(file)
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


def _read_exact(file: BinaryIO, length: int) -> bytes:
    data = file.read(length)
    if len(data) != length:
        raise HttpError(f"connection closed after {len(data)} of {length} body bytes")
    return data


def _read_chunked(file: BinaryIO) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_text = _read_line(file).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise HttpError(f"malformed chunk size {size_text[:20]!r}") from None
        if size == 0:
            break
        total += size
        if total > _MAX_BODY:
            raise HttpError("response body too large")
        chunks.append(_read_exact(file, size))
        if _read_line(file) not in (b"\r\n", b"\n"):
            raise HttpError("malformed chunk terminator")
    while _read_line(file) not in (b"\r\n", b"\n", b""):  # trailers, ignored
        pass
    return b"".join(chunks)
