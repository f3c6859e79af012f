"""The Telemetry API failing in every way it can, under the real RIE: never any harm.

Each case leaves the environment record without the platform's fields, says so once on the
extension's INFO lines, and costs nothing else: every invoke answered, no exit before SHUTDOWN,
one record. The RIE's default mode answers the subscription ``202 Telemetry.NotSupported``; its
Managed Instances mode implements the API for real, so the other cases are made there, by a
proxy in front of its Runtime API (``ExtensionsApiProxy``) or a port held by the test.
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from concurrency_observer import environment_record as fields
from concurrency_observer.local.environment import LambdaEnvironment
from concurrency_observer.local.environment_settings import EnvironmentSettings, observer_env
from tests.faults.api_proxy import TELEMETRY, ExtensionsApiProxy, wrapped_layer
from tests.faults.helpers import observer_lines, unique_name
from tests.lean_metrics import environment_records

pytestmark = pytest.mark.e2e

# What the Telemetry API adds to a record (with the invocation fields on LMI).
TELEMETRY_FIELDS = (
    fields.INIT_DURATION_MS,
    fields.INIT_STATUS,
    fields.INIT_ERROR_TYPE,
    fields.INIT_PHASE,
    fields.RESTORE_DURATION_MS,
    fields.RUNTIME_VERSION,
    fields.MAX_CONCURRENT_INVOCATIONS,
)
LMI_CONCURRENCY = 2
INVOKES = 4


def run(
    layer: Path, settings: EnvironmentSettings, rie_path: Path
) -> tuple[dict[str, object], list[str]]:
    """Invoke ``INVOKES`` times (2 at once on LMI), shut down; the one record and the log lines."""
    with (
        LambdaEnvironment(layer, settings, name="telemetry", rie_path=rie_path) as environment,
        ThreadPoolExecutor(LMI_CONCURRENCY) as pool,
    ):
        results = list(pool.map(environment.invoke, [{"sleep_ms": 50}] * INVOKES))
        stopped = environment.shutdown()
    output = environment.output
    assert [r.status for r in results] == [200] * INVOKES, output[-2000:]
    assert all(r.function_error is None for r in results), output[-2000:]
    assert stopped.forced is False
    assert "Extension.Crash" not in output
    records = environment_records(output, settings.function_name)
    assert len(records) == 1, observer_lines(output)
    return records[0], observer_lines(output)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory LMI's unprivileged extension can write (the proxy's upstream file)."""
    path = Path(tempfile.mkdtemp(prefix="telemetry-faults-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def lmi(**extra: str) -> EnvironmentSettings:
    """Lambda Managed Instances, emf sink, 2 at once."""
    return EnvironmentSettings(
        function_name=unique_name("tel"),
        max_concurrency=LMI_CONCURRENCY,
        extra_env={**observer_env(sink="emf", namespace=unique_name("Tel")), **extra},
    )


def said_once(lines: list[str], words: str) -> None:
    """``words`` on exactly one INFO line."""
    matching = [line for line in lines if words in line]
    assert len(matching) == 1, lines
    assert " INFO " in matching[0]


def test_not_supported(rie_path: Path, layer_dir: Path) -> None:
    """The RIE's default mode: 202 Telemetry.NotSupported; the record as before, INVOKE counted."""
    settings = EnvironmentSettings(
        function_name=unique_name("tel"),
        extra_env=observer_env(sink="emf", namespace=unique_name("Tel")),
    )
    record, lines = run(layer_dir, settings, rie_path)
    assert not set(TELEMETRY_FIELDS) & set(record)
    assert record[fields.INVOCATIONS] == INVOKES
    said_once(lines, "telemetry off: the Telemetry API is not supported here")


def test_subscription_refused(
    rie_path: Path, layer_dir: Path, tmp_path: Path, shared_dir: Path
) -> None:
    """LMI, the subscription refused (403): no platform fields, no invocation count."""
    with ExtensionsApiProxy(shared_dir, fail={TELEMETRY: [403]}).running() as proxy:
        layer = wrapped_layer(layer_dir, tmp_path / "opt", proxy)
        record, lines = run(layer, lmi(), rie_path)
    assert proxy.failed == [TELEMETRY]
    assert not set(TELEMETRY_FIELDS) & set(record)
    assert fields.INVOCATIONS not in record
    said_once(lines, "telemetry off: subscription refused (HTTP 403")


def test_port_taken(rie_path: Path, layer_dir: Path) -> None:
    """LMI, the configured port held by another process: no subscription, no platform fields."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        record, lines = run(layer_dir, lmi(CONCURRENCY_OBSERVER_TELEMETRY_PORT=str(port)), rie_path)
    assert not set(TELEMETRY_FIELDS) & set(record)
    assert fields.INVOCATIONS not in record
    said_once(lines, f"telemetry off: cannot listen on 127.0.0.1:{port}")


def test_no_event_arrives(
    rie_path: Path, layer_dir: Path, tmp_path: Path, shared_dir: Path
) -> None:
    """LMI, subscribed but nothing ever posted: the record without platform fields."""
    with ExtensionsApiProxy(shared_dir, telemetry_bodies=[]).running() as proxy:
        layer = wrapped_layer(layer_dir, tmp_path / "opt", proxy)
        record, lines = run(layer, lmi(), rie_path)
    assert not set(TELEMETRY_FIELDS) & set(record)
    assert fields.INVOCATIONS not in record
    said_once(lines, "telemetry on")
    said_once(lines, "telemetry: no platform event arrived")


def test_malformed_events(
    rie_path: Path, layer_dir: Path, tmp_path: Path, shared_dir: Path
) -> None:
    """Junk deliveries and events: answered 200, ignored, counted on the shutdown line."""
    bodies = [
        b"not json at all",
        b'{"type": "platform.initReport"}',
        b'[{"type": "platform.initReport", "record": {"status": 5, "metrics": "x"}}, 7]',
        b'[{"type": "platform.start", "time": "yesterday", "record": {"requestId": 1}}]',
        b"\xff\xfe" * 100,
    ]
    with ExtensionsApiProxy(shared_dir, telemetry_bodies=bodies).running() as proxy:
        layer = wrapped_layer(layer_dir, tmp_path / "opt", proxy)
        record, lines = run(layer, lmi(), rie_path)
    assert proxy.posted == [200] * len(bodies)
    # The one well-formed event (an initReport whose fields are all unreadable) leaves nothing.
    assert not {fields.INIT_DURATION_MS, fields.INIT_PHASE} & set(record)
    said_once(lines, "telemetry: 5 malformed events or deliveries ignored")


def free_port() -> int:
    """A port nothing listens on now (the extension binds it next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def forged_bodies() -> list[bytes]:
    """What a local process may post: an initReport of 999,999,999,999 ms, one of a phase Lambda
    has not, and 500 reports of invocations that never started."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    huge: dict[str, object] = {"phase": "init", "status": "error", "errorType": "Forged.Huge"}
    huge["metrics"] = {"durationMs": 999_999_999_999}
    odd = {"phase": "forged", "status": "error", "errorType": "Forged.ByLocalProcess"}
    reports = [
        {
            "time": now,
            "type": "platform.report",
            "record": {"requestId": f"forged-{i}", "metrics": {"durationMs": 5}},
        }
        for i in range(500)
    ]
    init_reports = [
        {"time": now, "type": "platform.initReport", "record": record} for record in (huge, odd)
    ]
    return [json.dumps(init_reports).encode(), json.dumps(reports).encode()]


def test_stalled_peers_and_forged_events(rie_path: Path, layer_dir: Path) -> None:
    """LMI under the real RIE: 1,000 connections held open on the listener (half stalled
    mid-header) and forged events posted; the RIE's later deliveries are still answered, the
    record holds the genuine values, and the refusals are counted on the shutdown line."""
    port = free_port()
    settings = lmi(CONCURRENCY_OBSERVER_TELEMETRY_PORT=str(port))
    held: list[socket.socket] = []
    with (
        LambdaEnvironment(layer_dir, settings, name="telemetry", rie_path=rie_path) as environment,
        ThreadPoolExecutor(LMI_CONCURRENCY) as pool,
    ):
        first = environment.invoke({"sleep_ms": 10})
        try:
            for i in range(1000):
                peer = socket.create_connection(("127.0.0.1", port), timeout=30)
                if i % 2:
                    peer.sendall(b"POST / HTTP/1.1\r\nContent-Len")
                held.append(peer)
            for forged in forged_bodies():
                answer = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                answer.request("POST", "/", forged)
                assert answer.getresponse().status == 200
                answer.close()
            results = list(pool.map(environment.invoke, [{"sleep_ms": 50}] * INVOKES))
            stopped = environment.shutdown()
        finally:
            for peer in held:
                peer.close()
    output = environment.output
    assert [r.status for r in [first, *results]] == [200] * (INVOKES + 1), output[-2000:]
    assert stopped.forced is False
    assert "Extension.Crash" not in output
    (record,) = environment_records(output, settings.function_name)
    lines = observer_lines(output)
    assert record[fields.INVOCATIONS] == INVOKES + 1, lines  # the genuine ones, none forged
    assert record[fields.INIT_STATUS] == "success"
    assert fields.INIT_ERROR_TYPE not in record
    init_ms, lifetime_ms = record[fields.INIT_DURATION_MS], record[fields.LIFETIME_MS]
    assert isinstance(init_ms, float)
    assert isinstance(lifetime_ms, float)
    assert 0 < init_ms < lifetime_ms
    said_once(lines, "telemetry: 502 implausible events refused")
