"""The ``cloudwatch`` sink: PutMetricData encoding, and delivery against a real local server."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl

import pytest

from concurrency_observer import schema
from concurrency_observer.extension.config import Config, Credentials
from concurrency_observer.extension.records import (
    Environment,
    ShutdownFacts,
    build_init_record,
    build_shutdown_record,
)
from concurrency_observer.extension.sinks import create_sink
from concurrency_observer.extension.sinks.cloudwatch import (
    CloudWatchSink,
    form_encode,
    is_retryable,
    iso8601,
    put_metric_data_params,
)

from .fakes import Scripted, ScriptedHttpServer, aws_error

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
