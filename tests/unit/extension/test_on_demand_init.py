"""Nothing on the network before an on-demand init's first ``/event/next``; its record at shutdown.

The extension runs in a thread against a cued Extensions API, with the ``cloudwatch`` sink at a
``FaultyCloudWatch`` that records when it is hit, container credentials and the metadata endpoint
at servers that record the same, and every ``connect`` and ``getaddrinfo`` of the process
watched. Until the first ``/event/next`` is answered (and after: until SHUTDOWN) only the Runtime
API may be reached. A provisioned-concurrency init, which no request waits for, still sends its
record before its first ``/event/next``.
"""

from __future__ import annotations

import _socket
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from concurrency_observer import schema
from concurrency_observer.extension import http11, telemetry_listener
from concurrency_observer.extension.config import Config
from concurrency_observer.extension.event_loop import run
from concurrency_observer.extension.extensions_api import ExtensionsApi
from concurrency_observer.extension.interruptions import Interruptions
from concurrency_observer.extension.log import Logger
from tests.faults.cued_api import CuedExtensionsApi, invoke_event, shutdown_event
from tests.faults.faulty_cloudwatch import ACCEPT, FaultyCloudWatch
from tests.unit.extension.fakes import LocalServer, QuietHandler, serving

FUNCTION = "on-demand-fn"


@dataclass
class Watched:
    """Every outbound ``connect`` and ``getaddrinfo`` of this process, with when it happened."""

    connects: list[tuple[float, str]] = field(default_factory=list)
    lookups: list[tuple[float, str]] = field(default_factory=list)

    def before(self, moment: float) -> list[str]:
        """What was reached or looked up before ``moment`` (``time.time()``)."""
        return [what for at, what in [*self.connects, *self.lookups] if at < moment]


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> Watched:
    """Record every ``connect`` and ``getaddrinfo`` while the test runs: through ``socket``, and
    through ``_socket``, on which the extension's HTTP client and listener are built."""
    seen = Watched()
    real_connect, real_lookup = socket.socket.connect, socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        seen.connects.append((time.time(), f"connect {address[0]}:{address[1]}"))
        real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        seen.lookups.append((time.time(), f"lookup {name}"))
        return real_lookup(host, *args, **kwargs)

    class WatchedSocket(_socket.socket):
        def connect(self, address: Any) -> None:
            seen.connects.append((time.time(), f"connect {address[0]}:{address[1]}"))
            super().connect(address)

    class WatchedSocketModule:
        """``_socket``, but for its ``socket`` type and ``getaddrinfo``, which are watched."""

        socket = WatchedSocket

        @staticmethod
        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            return getaddrinfo(host, *args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(_socket, name)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for module in (http11, telemetry_listener):
        monkeypatch.setattr(module, "_socket", WatchedSocketModule())
    return seen


class RecordingEndpoint:
    """An HTTP server on 127.0.0.1 that answers ``body`` to any GET and records when it is hit."""

    def __init__(self, body: dict[str, object]) -> None:
        self.hits: list[float] = []
        endpoint = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                endpoint.hits.append(time.time())
                self.read_request()
                self.reply(200, json.dumps(body).encode())

        self._server = LocalServer(Handler)
        self.address = self._server.address

    @contextmanager
    def running(self) -> Iterator[RecordingEndpoint]:
        """Serve in a background thread for the block."""
        with serving(self._server):
            yield self


@dataclass
class Servers:
    """The cued Extensions API and the three endpoints the extension could reach."""

    api: CuedExtensionsApi
    cloudwatch: FaultyCloudWatch
    credentials: RecordingEndpoint
    metadata: RecordingEndpoint
    started_wall: float
    outcome: list[int]

    def network_hits_before(self, moment: float) -> list[str]:
        """Which endpoint other than the Runtime API was hit before ``moment``."""
        hits = [f"cloudwatch at {r.at}" for r in self.cloudwatch.snapshot() if r.at < moment]
        hits += [f"credentials at {at}" for at in self.credentials.hits if at < moment]
        hits += [f"metadata at {at}" for at in self.metadata.hits if at < moment]
        return hits


@contextmanager
def extension(init_type: str | None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Servers]:
    """``run()`` in a thread: the cloudwatch sink with container credentials, the zone endpoint
    (read from ``os.environ``, as in Lambda)."""
    credentials_body: dict[str, object] = {
        "AccessKeyId": "AKIAONDEMAND",
        "SecretAccessKey": "on-demand-secret",
        "Token": "on-demand-token",
        "Expiration": "0001-01-01T00:00:00Z",
    }
    with (
        CuedExtensionsApi().running() as api,
        FaultyCloudWatch(then=ACCEPT).running() as cloudwatch,
        RecordingEndpoint(credentials_body).running() as credentials,
        RecordingEndpoint({"AvailabilityZoneID": "use1-az1"}).running() as metadata,
    ):
        environ = {
            "CONCURRENCY_OBSERVER_SINK": "cloudwatch",
            "AWS_ENDPOINT_URL_CLOUDWATCH": cloudwatch.url,
            "AWS_REGION": "us-east-1",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://{credentials.address}/credentials",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "container-token",
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,
        }
        if init_type is not None:
            environ["AWS_LAMBDA_INITIALIZATION_TYPE"] = init_type
        monkeypatch.setenv("AWS_LAMBDA_METADATA_API", metadata.address)
        monkeypatch.setenv("AWS_LAMBDA_METADATA_TOKEN", "metadata-token")
        config, warnings = Config.from_environ(environ)
        assert warnings == []
        client = ExtensionsApi(api.address)
        started_wall = time.time()
        outcome: list[int] = []

        def target() -> None:
            outcome.append(
                run(
                    config,
                    client,
                    "concurrency-observer",
                    Logger("INFO", lambda line: None),
                    Interruptions(),
                    started_wall=started_wall,
                    started_mono=time.monotonic(),
                    fallback=None,
                )
            )

        thread = threading.Thread(target=target)
        thread.start()
        try:
            yield Servers(api, cloudwatch, credentials, metadata, started_wall, outcome)
        finally:
            thread.join(timeout=20)
            client.close()


def runtime_api_only(reached: list[str], api_address: str) -> list[str]:
    """What in ``reached`` is not the Runtime API (nor the Telemetry listener's own name)."""
    host, port = api_address.rsplit(":", 1)
    allowed = {f"connect {host}:{port}", f"lookup {host}", "lookup sandbox.localdomain"}
    return [what for what in reached if what not in allowed]


@pytest.mark.parametrize("init_type", [None, "on-demand"])
def test_on_demand_reaches_nothing_before_its_first_next(
    init_type: str | None, watched: Watched, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On-demand: no CloudWatch, credentials, zone or DNS before /next; one request at shutdown."""
    with extension(init_type, monkeypatch) as servers:
        api = servers.api
        assert api.wait_polling(1)
        first_next = api.polls()[0].at
        api.cue(invoke_event("first"))
        assert api.wait_polling(2)
        # Before the first /next, and while the first invoke runs: the Runtime API only.
        answered = time.time()
        assert servers.network_hits_before(answered) == []
        assert runtime_api_only(watched.before(answered), api.address) == []
        assert any(at < first_next for at, _ in watched.connects)  # the watch did see Register
        shutdown_began = time.time()
        api.cue(shutdown_event())
    assert servers.outcome == [0]
    (request,) = servers.cloudwatch.snapshot()  # one request carries both records
    assert request.accepted
    assert request.at >= shutdown_began
    deltas = {d.value: d for d in request.data if d.name == schema.ENVIRONMENT_DELTA}
    assert sorted(deltas) == [-1.0, 1.0]
    assert deltas[1.0].dimension(schema.INIT_TYPE) == schema.INIT_ON_DEMAND
    assert abs(deltas[1.0].timestamp - servers.started_wall) < 0.002  # stamped at init
    assert deltas[-1.0].timestamp >= shutdown_began - 0.002
    # Credentials and the zone were fetched, by the shutdown delivery and the record.
    assert servers.credentials.hits
    assert min(servers.credentials.hits) >= shutdown_began
    assert servers.metadata.hits
    assert min(servers.metadata.hits) >= shutdown_began


def test_deferred_sink_is_created_at_its_first_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    """DeferredSink imports and builds the configured sink at its first delivery, once."""
    from concurrency_observer.extension import sinks
    from concurrency_observer.extension.records import INIT, Environment, build_delta_record

    created: list[str] = []
    real_create = sinks.create_sink

    def create(config: Config) -> Any:
        created.append(config.sink)
        return real_create(config)

    monkeypatch.setattr(sinks, "create_sink", create)
    config, _ = Config.from_environ({"CONCURRENCY_OBSERVER_SINK": "emf"})
    deferred = sinks.DeferredSink(config)
    assert (deferred.name, deferred.may_block, created) == ("emf", False, [])
    record = build_delta_record(INIT, Environment(FUNCTION, "$LATEST", "on-demand"), time.time())
    for _ in range(2):
        assert deferred.deliver([record], time.monotonic() + 1).delivered == (record,)
    assert created == ["emf"]


@pytest.mark.parametrize("init_type", ["provisioned-concurrency", "lambda-managed-instances"])
def test_no_request_waiting_sends_inside_init(
    init_type: str, watched: Watched, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Provisioned concurrency, LMI: the init record leaves before the first /next, as before."""
    with extension(init_type, monkeypatch) as servers:
        api = servers.api
        assert api.wait_polling(1)
        first_next = api.polls()[0].at
        assert servers.cloudwatch.wait_for_accepted(1, timeout=5)
        api.cue(shutdown_event())
    assert servers.outcome == [0]
    init_request, shutdown_request = servers.cloudwatch.snapshot()
    assert init_request.at < first_next
    assert [d.value for d in init_request.data] == [1.0]
    assert [d.value for d in shutdown_request.data] == [-1.0]
    assert init_request.data[0].dimension(schema.INIT_TYPE) == init_type
