"""A CloudWatch endpoint that misbehaves on cue: a real HTTP server on 127.0.0.1.

``FaultyCloudWatch`` answers each PutMetricData request with the next ``Answer`` of its script,
then with ``then`` for every request after the script::

    script = [error(503, "ServiceUnavailable"), error(400, "Throttling")]
    with FaultyCloudWatch(script, then=FORWARD, forward_to=moto_url).running() as cloudwatch:
        ...                                   # point AWS_ENDPOINT_URL_CLOUDWATCH at cloudwatch.url
        cloudwatch.accepted_data()            # every datum CloudWatch took, with its timestamp

An answer is an AWS error document with a status (``error``), an acceptance without storing
(``ACCEPT``), passing the request on to a real CloudWatch such as moto (``FORWARD``: what that
server answers is what the extension gets), or accepting the connection and never answering
(``HANG``: the request is read, then nothing until the server stops), reading the request and
closing the connection without a word (``DROP``), or answering 200 one byte at a time
(``trickle(seconds_per_byte)``). ``set_script`` swaps the
script between phases of a test (init, invocations, shutdown). Every request is recorded with
when it came, what it was answered, and the data it carried, parsed from the form body.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from urllib.parse import parse_qsl, urlsplit

from tests.unit.extension.fakes import LocalServer, QuietHandler, serving

# Request headers worth passing on to the real server (the signature covers host and x-amz-*).
_FORWARDED_HEADERS = ("Content-Type", "Authorization", "X-Amz-Date", "X-Amz-Security-Token")
HUNG = 0  # the status recorded for a request that was never answered


@dataclass(frozen=True)
class Answer:
    """How to answer one request: a status and AWS error ``code``, or ``forward``, or ``hang``;
    ``delay`` seconds after the request was read."""

    status: int = 200
    code: str | None = None
    hang: bool = False
    forward: bool = False
    delay: float = 0.0
    drop: bool = False  # read the request, close the connection, answer nothing
    trickle: float = 0.0  # seconds between the bytes of a 200 answer


ACCEPT = Answer()
HANG = Answer(hang=True)
FORWARD = Answer(forward=True)
DROP = Answer(drop=True)


def trickle(seconds_per_byte: float) -> Answer:
    """Accept, sending the answer one byte every ``seconds_per_byte``."""
    return Answer(trickle=seconds_per_byte)


def error(status: int, code: str) -> Answer:
    """An AWS Query-protocol error answer, e.g. ``error(400, "Throttling")``."""
    return Answer(status, code)


def slow(delay: float) -> Answer:
    """Accept, but only after ``delay`` seconds."""
    return Answer(delay=delay)


def error_document(code: str, message: str = "injected by the fault tests") -> bytes:
    """The XML body AWS sends with an error."""
    return (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
        f"<Message>{message}</Message></Error><RequestId>fault</RequestId></ErrorResponse>"
    ).encode()


@dataclass(frozen=True)
class Datum:
    """One MetricData member of a PutMetricData request."""

    name: str
    dimensions: tuple[tuple[str, str], ...]  # in request order
    timestamp: float  # epoch seconds
    value: float
    unit: str

    def dimension(self, name: str) -> str | None:
        """The value of dimension ``name``, if the datum has it."""
        return dict(self.dimensions).get(name)


def parse_data(body: bytes) -> list[Datum]:
    """The MetricData members of a form-encoded PutMetricData body, in member order."""
    members: dict[int, dict[str, str]] = {}
    for key, value in parse_qsl(body.decode("utf-8", "replace")):
        if key.startswith("MetricData.member."):
            index, _, rest = key.removeprefix("MetricData.member.").partition(".")
            members.setdefault(int(index), {})[rest] = value
    data = []
    for _, member in sorted(members.items()):
        dimensions = []
        position = 1
        while f"Dimensions.member.{position}.Name" in member:
            dimensions.append(
                (
                    member[f"Dimensions.member.{position}.Name"],
                    member[f"Dimensions.member.{position}.Value"],
                )
            )
            position += 1
        stamp = datetime.fromisoformat(member["Timestamp"].replace("Z", "+00:00")).timestamp()
        data.append(
            Datum(
                member["MetricName"],
                tuple(dimensions),
                stamp,
                float(member["Value"]),
                member.get("Unit", ""),
            )
        )
    return data


@dataclass
class Received:
    """One request: when it came, what it carried, what it was answered (``HUNG``: nothing)."""

    at: float  # wall clock, epoch seconds
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = HUNG
    data: list[Datum] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        """Whether CloudWatch took the data (answered 200)."""
        return self.status == 200


class FaultyCloudWatch:
    """A scripted CloudWatch on ``127.0.0.1:<free port>``; see the module docstring."""

    def __init__(
        self,
        script: list[Answer] | None = None,
        *,
        then: Answer = ACCEPT,
        forward_to: str | None = None,
    ) -> None:
        if forward_to is None and (then.forward or any(a.forward for a in script or [])):
            raise ValueError("FORWARD needs forward_to")
        self.forward_to = forward_to
        self.requests: list[Received] = []
        self._script = list(script or [])
        self._then = then
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.arrived = threading.Condition(self._lock)
        cloudwatch = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                received = Received(time.time(), self.path, dict(self.headers.items()), body)
                with contextlib.suppress(KeyError, ValueError):  # not PutMetricData: no data
                    received.data = parse_data(body)
                with cloudwatch.arrived:
                    cloudwatch.requests.append(received)
                    answer = cloudwatch._script.pop(0) if cloudwatch._script else cloudwatch._then
                    cloudwatch.arrived.notify_all()
                if answer.hang or cloudwatch._stop.wait(answer.delay):
                    cloudwatch._stop.wait()
                    self.close_connection = True
                    return
                if answer.drop:  # the request was read: maybe taken, as far as the client knows
                    self.close_connection = True
                    return
                if answer.trickle:
                    self._trickle(answer.trickle, received)
                    return
                if answer.forward:
                    status, reply = cloudwatch._forward(self.path, self.headers, body)
                elif answer.status == 200:
                    status, reply = 200, b"<PutMetricDataResponse/>"
                else:
                    status, reply = answer.status, error_document(answer.code or "InternalFailure")
                with cloudwatch._lock:
                    received.status = status
                # A client that stopped waiting finds the data taken all the same, as in AWS.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.reply(status, reply, content_type="text/xml")

            def _trickle(self, seconds_per_byte: float, received: Received) -> None:
                """A 200 answer, one byte at a time, until it is sent or the client leaves."""
                body = b"<PutMetricDataResponse/>"
                answer = (
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                self.close_connection = True
                for index in range(len(answer)):
                    if cloudwatch._stop.wait(seconds_per_byte):
                        return
                    try:
                        self.wfile.write(answer[index : index + 1])
                        self.wfile.flush()
                    except OSError:
                        return  # the client gave up: the data stays taken, as in AWS
                with cloudwatch._lock:
                    received.status = 200

        self._server = LocalServer(Handler)
        self.url = f"http://{self._server.address}"

    def _forward(self, path: str, headers: Message, body: bytes) -> tuple[int, bytes]:
        assert self.forward_to is not None
        target = urlsplit(self.forward_to)
        connection = http.client.HTTPConnection(target.hostname or "", target.port, timeout=30)
        try:
            passed = {name: headers[name] for name in _FORWARDED_HEADERS if name in headers}
            connection.request("POST", path, body=body, headers=passed)
            response = connection.getresponse()
            return response.status, response.read()
        except OSError as exc:  # the real server is down: say so like a gateway would
            return 502, error_document("BadGateway", str(exc))
        finally:
            connection.close()

    def set_script(self, script: list[Answer], *, then: Answer | None = None) -> None:
        """Answer the next requests with ``script``, then with ``then`` (default: unchanged)."""
        with self._lock:
            self._script = list(script)
            if then is not None:
                if then.forward and self.forward_to is None:
                    raise ValueError("FORWARD needs forward_to")
                self._then = then

    def wait_for_requests(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` requests have come (``False`` after ``timeout``)."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)

    def wait_for_accepted(self, count: int, timeout: float) -> bool:
        """Block until ``count`` requests were answered 200 (``False`` after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while sum(r.accepted for r in self.snapshot()) < count:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def snapshot(self) -> list[Received]:
        """The requests so far."""
        with self._lock:
            return list(self.requests)

    def accepted_data(self) -> list[Datum]:
        """Every datum of every request answered 200, in arrival order."""
        return [datum for request in self.snapshot() if request.accepted for datum in request.data]

    @contextmanager
    def running(self) -> Iterator[FaultyCloudWatch]:
        """Serve in a background thread for the block; hung requests are released at the end."""
        with serving(self._server, release=self._stop.set):
            yield self
