"""The harness itself, with a minimal extension or none: lazy init, cleanup, a clean environment."""

from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from concurrency_observer.local import ports, rie
from concurrency_observer.local.environment import LambdaEnvironment
from concurrency_observer.local.process_session import processes_in_session

pytestmark = pytest.mark.e2e

# The floor (docs/design.md): register, then loop on /event/next, printing each event. Stdlib only.
MINIMAL_EXTENSION = """#!/usr/bin/env python3
import http.client, json, os, sys
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
api = http.client.HTTPConnection(host, int(port))
events = json.dumps({"events": ["INVOKE", "SHUTDOWN"]})
api.request("POST", "/2020-01-01/extension/register", events, {"Lambda-Extension-Name": "minimal"})
response = api.getresponse(); response.read()
ident = response.getheader("Lambda-Extension-Identifier")
while True:
    headers = {"Lambda-Extension-Identifier": ident}
    api.request("GET", "/2020-01-01/extension/event/next", headers=headers)
    event = json.loads(api.getresponse().read())
    print("[minimal]", event["eventType"], event.get("shutdownReason", ""), flush=True)
    if event["eventType"] == "SHUTDOWN":
        sys.exit(0)
"""


@pytest.fixture
def minimal_layer(tmp_path: Path) -> Path:
    """A layer whose only extension is the minimal one above."""
    launcher = tmp_path / "opt" / "extensions" / "minimal"
    launcher.parent.mkdir(parents=True)
    launcher.write_text(MINIMAL_EXTENSION)
    launcher.chmod(0o755)
    return tmp_path / "opt"


def test_rie_binary_is_cached_verified_and_executable(rie_path: Path) -> None:
    """The RIE comes from the pinned aws-sam-cli, is an ELF binary and can be executed."""
    if os.environ.get(rie.RIE_OVERRIDE_VARIABLE):
        pytest.skip(f"{rie.RIE_OVERRIDE_VARIABLE} names the binary: nothing was downloaded")
    assert rie.SAM_CLI_VERSION in rie_path.parts
    assert rie_path.read_bytes()[:4] == b"\x7fELF"
    assert os.access(rie_path, os.X_OK)


def test_extension_gets_shutdown_on_sigterm(rie_path: Path, minimal_layer: Path) -> None:
    """The layer is on /opt: its extension registers, sees the invokes, then SandboxTerminated."""
    with LambdaEnvironment(minimal_layer, rie_path=rie_path) as environment:
        environment.invoke()
        environment.invoke()
        result = environment.shutdown()
    lines = [line for line in environment.output.splitlines() if line.startswith("[minimal]")]
    assert lines == [
        "[minimal] INVOKE ",
        "[minimal] INVOKE ",
        "[minimal] SHUTDOWN SandboxTerminated",
    ]
    assert result.forced is False


def minimal_lines(environment: LambdaEnvironment) -> list[str]:
    """What the minimal extension printed: one line per event."""
    return [line for line in environment.output.splitlines() if line.startswith("[minimal]")]


def test_a_held_init_shut_down_was_never_invoked(rie_path: Path, minimal_layer: Path) -> None:
    """Held at the gate: the extension registered and waits; SIGTERM: SHUTDOWN, no INVOKE ever."""
    environment = LambdaEnvironment(minimal_layer, rie_path=rie_path, init_gate=True).start()
    try:
        environment.hold_init({"warmup": True})
        registered = "External agent minimal" in environment.output
        result = environment.shutdown()
    finally:
        environment.close()
    assert registered  # the RIE logged the registration while the init was held
    # One SHUTDOWN and nothing else: SandboxTerminated from the SIGTERM, or spindown when the
    # RIE's own clean-up of the unfinished init reaches the extension first (both seen here).
    (line,) = minimal_lines(environment)
    assert line in ("[minimal] SHUTDOWN SandboxTerminated", "[minimal] SHUTDOWN spindown")
    assert environment.output.count("External agent minimal") == 1  # never initialized twice
    assert result.forced is False


def test_a_released_init_is_the_first_invoke(rie_path: Path, minimal_layer: Path) -> None:
    """Nothing reaches the extension while held; the release is its first INVOKE, then ours."""
    environment = LambdaEnvironment(minimal_layer, rie_path=rie_path, init_gate=True).start()
    try:
        environment.hold_init({"warmup": True})
        while_held = minimal_lines(environment)
        released = environment.release_init()
        answer = environment.invoke({"sleep_ms": 0})
        environment.shutdown()
    finally:
        environment.close()
    assert while_held == []
    assert released.status == 200
    assert answer.invoked_monotonic is not None
    assert minimal_lines(environment) == [
        "[minimal] INVOKE ",
        "[minimal] INVOKE ",
        "[minimal] SHUTDOWN SandboxTerminated",
    ]


def test_init_is_lazy_and_kill_leaves_no_process(rie_path: Path, minimal_layer: Path) -> None:
    """Only the RIE runs until the first invoke; SIGKILL then takes runtime and extension too."""
    environment = LambdaEnvironment(minimal_layer, rie_path=rie_path).start()
    try:
        session = environment.session_id
        assert session is not None
        before_invoke = len(environment.leftover_processes())  # unshare and the RIE
        environment.invoke()
        after_invoke = len(environment.leftover_processes())  # + runtime, extension (+ its sh)
        environment.kill()
    finally:
        environment.close()
    assert before_invoke == 2
    assert after_invoke >= 4
    assert processes_in_session(session) == []


def test_host_credentials_do_not_leak(rie_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment sees the dummy credentials and none of the host's variables."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "host-secret")
    monkeypatch.setenv("AWS_PROFILE", "host-profile")
    with LambdaEnvironment(None, rie_path=rie_path) as environment:
        names = ["AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_LAMBDA_FUNCTION_NAME"]
        payload = environment.invoke({"echo_env": names}).payload
    assert payload["env"]["AWS_SECRET_ACCESS_KEY"] not in (None, "host-secret")
    assert payload["env"]["AWS_PROFILE"] is None
    assert payload["env"]["AWS_LAMBDA_FUNCTION_NAME"] == environment.settings.function_name


def test_start_retries_when_a_port_is_taken(
    rie_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If another process holds the picked port, start() picks new ports and still succeeds."""
    with socket.socket() as squatter:
        squatter.bind((ports.LOOPBACK, 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        real_free_port = ports.free_port
        picks = iter([taken, taken])
        monkeypatch.setattr(ports, "free_port", lambda: next(picks, None) or real_free_port())
        with LambdaEnvironment(None, rie_path=rie_path) as environment:
            url = environment.emulator_url
            status = environment.invoke().status
    assert not url.endswith(f":{taken}")
    assert status == 200


def test_environments_started_concurrently_are_independent(
    rie_path: Path, minimal_layer: Path
) -> None:
    """Four environments started from threads get their own ports and answer and stop cleanly."""

    def lifecycle(index: int) -> tuple[str, int, bool, list[int]]:
        environment = LambdaEnvironment(minimal_layer, name=f"c{index}", rie_path=rie_path)
        with environment:
            url = environment.emulator_url
            status = environment.invoke({"sleep_ms": 50}).status
            session = environment.session_id
            forced = environment.shutdown().forced
        assert session is not None
        return url, status, forced, processes_in_session(session)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lifecycle, range(4)))
    assert len({url for url, _, _, _ in results}) == 4
    assert [status for _, status, _, _ in results] == [200] * 4
    assert [forced for _, _, forced, _ in results] == [False] * 4
    assert [left for _, _, _, left in results] == [[]] * 4


def test_shutdown_kills_what_overruns_the_timeout(rie_path: Path, minimal_layer: Path) -> None:
    """An extension that hangs on SHUTDOWN is killed after the timeout, with everything else."""
    launcher = minimal_layer / "extensions" / "minimal"
    launcher.write_text(MINIMAL_EXTENSION.replace("sys.exit(0)", "import time; time.sleep(60)"))
    environment = LambdaEnvironment(minimal_layer, rie_path=rie_path).start()
    try:
        environment.invoke()
        session = environment.session_id
        result = environment.shutdown(timeout=0.3)
    finally:
        environment.close()
    assert session is not None
    assert result.forced is True
    assert result.duration_s < 2.0  # well before the RIE's own 2 s deadline would end it
    assert processes_in_session(session) == []


def test_concurrent_invokes_of_one_environment_wait_for_each_other(rie_path: Path) -> None:
    """Two invoke() calls at once both succeed, one after the other (the RIE crashes otherwise)."""
    with LambdaEnvironment(None, rie_path=rie_path) as environment:
        environment.invoke()
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(lambda _: environment.invoke({"sleep_ms": 200}), range(2)))
        still_running = environment.running
    assert [r.status for r in results] == [200, 200]
    assert sorted(r.payload["invocation"] for r in results) == [2, 3]
    earlier, later = sorted(results, key=lambda r: r.started_at)
    assert later.started_at >= earlier.started_at + earlier.latency_s - 0.01  # it waited
    assert still_running
