"""The ``cloudwatch`` sink: PutMetricData encoding, and delivery against a real local server."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

import pytest

from concurrency_observer import schema
from concurrency_observer.extension.config import Config, ContainerCredentialsSource, Credentials
from concurrency_observer.extension.credentials import ContainerCredentials
from concurrency_observer.extension.records import (
    Environment,
    ShutdownFacts,
    build_init_record,
    build_shutdown_record,
)
from concurrency_observer.extension.sinks import create_sink
from concurrency_observer.extension.sinks.cloudwatch import (
    CONNECT_FAILURES_BEFORE_EMF,
    CloudWatchSink,
    form_encode,
    is_retryable,
    iso8601,
    put_metric_data_params,
)
from concurrency_observer.extension.sinks.emf import EmfSink

from .fakes import Scripted, ScriptedHttpServer, aws_error
from .test_credentials import TOKEN as CREDENTIALS_TOKEN
from .test_credentials import CredentialsServer

ENVIRONMENT = Environment("orders", "7", "on-demand")
INIT = build_init_record(ENVIRONMENT, 1700000000.123)
SHUTDOWN = build_shutdown_record(
    ENVIRONMENT, ShutdownFacts("spindown", 1700000360.5, 360.377, 12.0, 4, 0.25)
)
CREDENTIALS = Credentials("AKIDEXAMPLE", "secret", "session-token")
OK = Scripted(200, b"<PutMetricDataResponse/>")


def sink_for(url: str | None, credentials: Credentials | None = CREDENTIALS) -> CloudWatchSink:
    """A sink aimed at ``url`` with short timeouts."""
    return CloudWatchSink(
        namespace="Test/NS",
        endpoint_url=url,
        region="us-east-1",
        credentials=credentials,
        connect_timeout=0.2,
    )


def data(body: bytes) -> dict[int, dict[str, str]]:
    """The MetricData members of a PutMetricData body, by index."""
    members: dict[int, dict[str, str]] = {}
    for key, field_value in parse_qsl(body.decode(), strict_parsing=True):
        if key.startswith("MetricData.member."):
            index, _, rest = key.removeprefix("MetricData.member.").partition(".")
            members.setdefault(int(index), {})[rest] = field_value
    return members


def test_iso8601() -> None:
    """Timestamps are UTC ISO 8601 with milliseconds."""
    assert iso8601(1700000000.123) == "2023-11-14T22:13:20.123Z"
    assert iso8601(1700000000.9999) == "2023-11-14T22:13:21.000Z"


def test_put_metric_data_body() -> None:
    """One datum per metric and dimension set, each with its record's timestamp."""
    body = form_encode(put_metric_data_params("Test/NS", [INIT, SHUTDOWN]))
    params = dict(parse_qsl(body.decode()))
    assert (params["Action"], params["Version"], params["Namespace"]) == (
        "PutMetricData",
        "2010-08-01",
        "Test/NS",
    )
    members = data(body)
    expected_count = sum(len(m.dimension_sets) for r in (INIT, SHUTDOWN) for m in r.metrics)
    assert len(members) == expected_count == 3 + 17
    init_data = [m for m in members.values() if m["MetricName"] == schema.ENVIRONMENT_INIT]
    assert {m["Timestamp"] for m in init_data} == {"2023-11-14T22:13:20.123Z"}
    assert {(m["Value"], m["Unit"]) for m in init_data} == {("1", "Count")}
    dimension_sets = {
        tuple(
            m[f"Dimensions.member.{i}.Name"] for i in (1, 2) if f"Dimensions.member.{i}.Name" in m
        )
        for m in init_data
    }
    assert dimension_sets == set(schema.BASE_DIMENSION_SETS)
    lifetime = [m for m in members.values() if m["MetricName"] == schema.ENVIRONMENT_LIFETIME]
    assert {(m["Value"], m["Unit"], m["Timestamp"]) for m in lifetime} == {
        ("360.377", "Seconds", "2023-11-14T22:19:20.500Z")
    }
    by_reason = [
        m for m in members.values() if m.get("Dimensions.member.2.Name") == schema.SHUTDOWN_REASON
    ]
    assert [(m["MetricName"], m["Dimensions.member.2.Value"]) for m in by_reason] == [
        (schema.ENVIRONMENT_SHUTDOWN, "spindown")
    ]
    by_class = [
        m for m in members.values() if m.get("Dimensions.member.3.Name") == schema.FIRST_INVOKE
    ]
    assert [
        (m["MetricName"], m["Dimensions.member.2.Value"], m["Dimensions.member.3.Value"])
        for m in by_class
    ] == [(schema.ENVIRONMENT_SHUTDOWN, "on-demand", schema.FIRST_INVOKE_PROMPT)]


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (500, None, True),
        (503, "ServiceUnavailable", True),
        (400, "Throttling", True),
        (429, None, True),
        (400, "InvalidParameterValue", False),
        (403, "AccessDenied", False),
    ],
)
def test_is_retryable(status: int, code: str | None, retryable: bool) -> None:
    """Retry 5xx, 429 and throttling; not other 4xx."""
    assert is_retryable(status, code) is retryable


def test_retries_until_success_and_delivers_once() -> None:
    """503, then Throttling, then 200: delivered once, with the original timestamps, signed."""
    script = [
        Scripted(503, aws_error("ServiceUnavailable")),
        Scripted(400, aws_error("Throttling")),
        OK,
    ]
    with ScriptedHttpServer(script).running() as server:
        result = sink_for(server.url).deliver([INIT], time.monotonic() + 5)
    assert result.delivered == (INIT,)
    assert result.failed == ()
    assert result.attempts == 3
    assert len(server.requests) == 3
    accepted = server.requests[-1]
    assert {m["Timestamp"] for m in data(accepted.body).values()} == {iso8601(INIT.timestamp)}
    assert accepted.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/us-east-1/monitoring/aws4_request" in accepted.headers["Authorization"]
    assert accepted.headers["X-Amz-Security-Token"] == "session-token"
    assert accepted.headers["Content-Type"].startswith("application/x-www-form-urlencoded")


def test_access_denied_is_not_retried() -> None:
    """403 fails at once, with the status and AWS's error code in the reason."""
    with ScriptedHttpServer([Scripted(403, aws_error("AccessDenied", "no"))]).running() as server:
        result = sink_for(server.url).deliver([INIT, SHUTDOWN], time.monotonic() + 5)
    assert len(server.requests) == 1
    assert result.delivered == ()
    assert result.failed == (INIT, SHUTDOWN)
    assert "403" in result.reason
    assert "AccessDenied" in result.reason


def test_never_answering_is_bounded_by_the_deadline() -> None:
    """A server that takes the request and never answers: one attempt, unconfirmed at the deadline.

    The request was sent, so CloudWatch may have taken it: it is never sent again (a second
    PutMetricData would count its environment twice), and its answer is awaited until the deadline.
    """
    with ScriptedHttpServer([Scripted(hang=True)]).running() as server:
        started = time.monotonic()
        result = sink_for(server.url).deliver([INIT], started + 0.8)
        elapsed = time.monotonic() - started
    assert result.unconfirmed == (INIT,)
    assert result.failed == ()
    assert "timed out waiting for an answer" in result.reason
    assert 0.7 < elapsed < 1.2  # the whole 0.8 s deadline, plus slack on a busy machine
    assert result.attempts == 1
    assert len(server.requests) == 1


def test_slow_answer_is_awaited_not_resent() -> None:
    """CloudWatch answering after a second: waited for, delivered with one request."""
    with ScriptedHttpServer([Scripted(200, b"<ok/>", delay=1.2)]).running() as server:
        result = sink_for(server.url).deliver([INIT], time.monotonic() + 3)
    assert result.delivered == (INIT,)
    assert len(server.requests) == 1


def test_unreachable_endpoint_fails_within_deadline() -> None:
    """Connection refused is retried with backoff, then reported when the deadline comes."""
    with ScriptedHttpServer([OK]).running() as server:
        url = server.url
    started = time.monotonic()
    result = sink_for(url).deliver([INIT], started + 0.4)
    assert time.monotonic() - started < 0.8  # 0.4 s deadline, plus slack
    assert result.failed == (INIT,)
    assert "cannot connect" in result.reason
    assert result.attempts > 1


def test_unconfigured_sink_fails_without_trying() -> None:
    """No credentials: every record is reported failed, with the reason, and nothing is sent."""
    result = sink_for("http://127.0.0.1:9", credentials=None).deliver([INIT], time.monotonic() + 5)
    assert result.failed == (INIT,)
    assert "credentials" in result.reason
    assert result.attempts == 0


def test_create_sink_from_config() -> None:
    """create_sink builds the configured sink."""
    config, _ = Config.from_environ(
        {
            "AWS_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "a",
            "AWS_SECRET_ACCESS_KEY": "b",
        }
    )
    assert create_sink(config).name == "cloudwatch"
    emf_config, _ = Config.from_environ({"CONCURRENCY_OBSERVER_SINK": "emf"})
    assert create_sink(emf_config).name == "emf"


def test_moto_accepts_and_keeps_the_timestamps() -> None:
    """Against a real moto CloudWatch server: every datum stored, under its record's time."""
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        now = time.time()
        init = build_init_record(ENVIRONMENT, now - 600)
        shutdown = build_shutdown_record(
            ENVIRONMENT, ShutdownFacts("spindown", now, 600.5, 3.25, 4, 1.0)
        )
        sink = CloudWatchSink(
            namespace="UnitMoto", endpoint_url=url, region="us-east-1", credentials=CREDENTIALS
        )
        result = sink.deliver([init, shutdown], time.monotonic() + 10)
        assert result.failed == (), result.reason
        client = boto3.client(
            "cloudwatch",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        stored = {
            (m["MetricName"], tuple(d["Name"] for d in m["Dimensions"]))
            for m in client.list_metrics(Namespace="UnitMoto")["Metrics"]
        }
        expected = {
            (metric.name, dimension_set)
            for record in (init, shutdown)
            for metric in record.metrics
            for dimension_set in metric.dimension_sets
        }
        assert stored == expected
        datapoints = client.get_metric_statistics(
            Namespace="UnitMoto",
            MetricName=schema.ENVIRONMENT_INIT,
            Dimensions=[{"Name": "FunctionName", "Value": "orders"}],
            StartTime=now - 3600,
            EndTime=now + 60,
            Period=60,
            Statistics=["Sum"],
        )["Datapoints"]
        assert [abs(d["Timestamp"].timestamp() - init.timestamp) < 1 for d in datapoints] == [True]
    finally:
        server.stop()


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    """Backoff: full jitter over 50 ms doubling per attempt, capped at 1 s, inside the deadline."""
    now = [1000.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:  # a clock that moves only when the sink sleeps
        sleeps.append(seconds)
        now[0] += seconds

    with ScriptedHttpServer([Scripted(503, aws_error("ServiceUnavailable"))]).running() as server:
        sink = CloudWatchSink(
            namespace="NS",
            endpoint_url=server.url,
            region="us-east-1",
            credentials=CREDENTIALS,
            clock=lambda: now[0],
            sleep=sleep,
            jitter=lambda: 0.5,
        )
        result = sink.deliver([INIT], 1003.0)
    assert result.failed == (INIT,)
    assert "503" in result.reason
    # 0.5 x min(1 s, 50 ms x 2^n): 1.275 s for the first six, then 0.5 s while 3 s allow it.
    assert sleeps == [0.025, 0.05, 0.1, 0.2, 0.4, 0.5, 0.5, 0.5, 0.5]
    assert result.attempts == len(sleeps) + 1 == len(server.requests)


def test_default_jitter_is_uniform_in_unit_interval() -> None:
    """The default jitter source gives values in [0, 1) that vary."""
    from concurrency_observer.extension.sinks.cloudwatch import _uniform_jitter

    values = [_uniform_jitter() for _ in range(200)]
    assert all(0 <= v < 1 for v in values)
    assert len(set(values)) > 150


# -- fail open, exactly once, container credentials -------------------------------------------


class EmfCapture:
    """An EMF sink whose lines go to a list."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.sink = EmfSink("Test/NS", self.lines.append)


def failing_open_sink(url: str, emf: EmfCapture, log: list[str], **options: Any) -> CloudWatchSink:
    """A sink like ``from_config`` builds: falling back to EMF, logging to ``log``."""
    return CloudWatchSink(
        namespace="Test/NS",
        endpoint_url=url,
        region="us-east-1",
        credentials=options.pop("credentials", CREDENTIALS),
        connect_timeout=0.2,
        fallback=emf.sink,
        log=log.append,
        **options,
    )


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_refused_connections_fail_open_to_emf_once() -> None:
    """No connection can be opened: the records become EMF lines, delivered, one log line."""
    emf, log = EmfCapture(), list[str]()
    result = failing_open_sink(closed_port_url(), emf, log).deliver(
        [INIT, SHUTDOWN], time.monotonic() + 5
    )
    assert result.delivered == result.emf_fallback == (INIT, SHUTDOWN)
    assert result.failed == result.unconfirmed == ()
    assert result.attempts == CONNECT_FAILURES_BEFORE_EMF
    assert [json.loads(line)["_aws"]["Timestamp"] for line in emf.lines] == [
        INIT.timestamp_ms,
        SHUTDOWN.timestamp_ms,
    ]
    (line,) = log
    assert "CloudWatch unreachable" in line
    assert "cannot connect" in line
    assert "wrote init+shutdown as EMF" in line


def test_hanging_dns_fails_open_within_the_deadline() -> None:
    """A DNS lookup that never returns (injected): abandoned per attempt, then EMF."""
    release = threading.Event()

    def hanging_resolver(host: bytes | str, port: int) -> list[Any]:
        release.wait(30)
        raise OSError("released")

    emf, log = EmfCapture(), list[str]()
    sink = failing_open_sink(
        "https://monitoring.us-east-1.amazonaws.com", emf, log, resolver=hanging_resolver
    )
    started = time.monotonic()
    try:
        result = sink.deliver([INIT], started + 3)
    finally:
        release.set()
    assert time.monotonic() - started < 3
    assert result.emf_fallback == (INIT,)
    assert len(emf.lines) == 1
    assert "timed out resolving monitoring.us-east-1.amazonaws.com" in log[0]


def test_opened_then_hung_is_unconfirmed_and_never_emf() -> None:
    """A connection opened, the request taken, no answer: unconfirmed, no EMF line, no re-send."""
    emf, log = EmfCapture(), list[str]()
    with ScriptedHttpServer([Scripted(hang=True)]).running() as server:
        result = failing_open_sink(server.url, emf, log).deliver([INIT], time.monotonic() + 0.6)
    assert result.unconfirmed == (INIT,)
    assert result.delivered == result.emf_fallback == ()
    assert emf.lines == []
    assert log == []
    assert len(server.requests) == 1


def test_an_endpoint_that_answered_once_is_not_bypassed() -> None:
    """503, then refused: CloudWatch was reached, so no EMF; the record stays failed."""
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"

    def answer_once_then_vanish() -> None:
        conn, _ = listener.accept()
        with conn:
            read_http_request(conn)
            body = aws_error("ServiceUnavailable")
            conn.sendall(
                b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
        listener.close()  # every later attempt is refused

    thread = threading.Thread(target=answer_once_then_vanish, daemon=True)
    thread.start()
    emf, log = EmfCapture(), list[str]()
    result = failing_open_sink(url, emf, log).deliver([INIT], time.monotonic() + 0.5)
    thread.join(2)
    assert result.failed == (INIT,)
    assert result.attempts >= 1 + CONNECT_FAILURES_BEFORE_EMF  # refused after the 503, retried
    assert "cannot connect" in result.reason
    assert emf.lines == []
    assert log == []


def read_http_request(conn: socket.socket) -> bytes:
    """One whole request (head and Content-Length body) from ``conn``; b"" at EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, field_value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(field_value)
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


def test_503_then_a_retry_read_and_dropped_reaches_the_server_at_most_once_more() -> None:
    """The issue's case: 503 on a kept-alive connection, the retry read then dropped: no third."""
    received: list[tuple[int, bytes]] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        index = 0
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                request = read_http_request(conn)
                received.append((index, request))
                if index == 0:
                    body = aws_error("ServiceUnavailable")
                    conn.sendall(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: %d\r\n\r\n%s"
                        % (len(body), body)
                    )
                    received.append((index, read_http_request(conn)))  # read, then dropped
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            index += 1

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    emf, log = EmfCapture(), list[str]()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        result = failing_open_sink(url, emf, log, jitter=lambda: 0.0).deliver(
            [INIT], time.monotonic() + 2
        )
        time.sleep(0.2)  # a re-send would have arrived by now
    finally:
        stop.set()
        thread.join(2)
        listener.close()
    carrying_init = [i for i, request in received if b"MetricName=EnvironmentInit&" in request]
    # Once refused (503, not taken), once read and dropped (maybe taken): never a third time.
    assert carrying_init == [0, 0]
    assert result.unconfirmed == (INIT,)
    assert result.delivered == result.failed == ()
    assert emf.lines == []


def test_container_credentials_fetched_lazily_and_used_to_sign() -> None:
    """SnapStart: nothing fetched until a delivery; the fetched keys and token sign the request."""
    with (
        CredentialsServer().running() as credentials_server,
        ScriptedHttpServer([OK]).running() as server,
    ):
        config, warnings = Config.from_environ(
            {
                "AWS_REGION": "us-east-1",
                "AWS_ENDPOINT_URL_CLOUDWATCH": server.url,
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": credentials_server.uri,
                "AWS_CONTAINER_AUTHORIZATION_TOKEN": CREDENTIALS_TOKEN,
            }
        )
        assert warnings == []
        sink = CloudWatchSink.from_config(config)
        assert credentials_server.authorizations == []  # not before it is needed
        result = sink.deliver([INIT], time.monotonic() + 5)
    assert result.delivered == (INIT,)
    (request,) = server.requests
    assert request.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=ASIAFETCHED1/")
    assert request.headers["X-Amz-Security-Token"] == "session-1"


def test_expired_token_answer_fetches_fresh_credentials() -> None:
    """CloudWatch says ExpiredToken: the cache is dropped, fresh keys fetched, the retry signed."""
    with (
        CredentialsServer().running() as credentials_server,
        ScriptedHttpServer([Scripted(400, aws_error("ExpiredToken")), OK]).running() as server,
    ):
        source = ContainerCredentialsSource(credentials_server.uri, CREDENTIALS_TOKEN)
        sink = CloudWatchSink(
            namespace="Test/NS",
            endpoint_url=server.url,
            region="us-east-1",
            credentials=None,
            container_credentials=ContainerCredentials(source),
        )
        result = sink.deliver([INIT], time.monotonic() + 5)
    assert result.delivered == (INIT,)
    assert len(credentials_server.authorizations) == 2
    assert len(server.requests) == 2


def test_a_value_that_is_no_utf8_goes_out_as_emf_and_the_rest_as_usual() -> None:
    """A function name of bytes that are no UTF-8 (a lone surrogate, as os.environ decodes them):
    its data points as EMF lines, escaped; the other records still by PutMetricData."""
    odd = Environment("orders-\udcff\udcfe", "7", "on-demand")
    odd_init = build_init_record(odd, 1700000000.5)
    odd_shutdown = build_shutdown_record(
        odd, ShutdownFacts("spindown", 1700000360.5, 360.0, 12.0, 4, 0.25)
    )
    emf, log = EmfCapture(), list[str]()
    with ScriptedHttpServer([OK]).running() as server:
        result = failing_open_sink(server.url, emf, log).deliver(
            [INIT, odd_init, odd_shutdown], time.monotonic() + 5
        )
    assert set(result.delivered) == {INIT, odd_init, odd_shutdown}
    assert result.emf_fallback == (odd_init, odd_shutdown)
    assert result.failed == result.unconfirmed == ()
    (request,) = server.requests
    assert {m["Dimensions.member.1.Value"] for m in data(request.body).values()} == {"orders"}
    names = {json.loads(line)["FunctionName"] for line in emf.lines}
    assert names == {"orders-\udcff\udcfe"}  # escaped in the line, the same text read back
    assert all(line.isascii() for line in emf.lines)
    (line,) = log
    assert "not UTF-8" in line
    assert "wrote init+shutdown as EMF" in line
