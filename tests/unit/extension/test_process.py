"""The extension as Lambda runs it: a subprocess from the built layer, against local fakes.

``python -I -S -B bootstrap.py`` (what the launcher execs) talks to a fake Extensions API on
127.0.0.1; the ``emf`` sink's stdout shows exactly which records came out.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from concurrency_observer import schema
from concurrency_observer.layer import EXTENSION_NAME, build_layer, extract_layer

from .fakes import EXTENSION_ID, FakeExtensionsApi, Scripted, ScriptedHttpServer

FORBIDDEN_AT_COLD_START = {
    "ssl", "http", "urllib", "email", "logging", "threading", "dataclasses", "typing",
    "inspect", "hmac", "hashlib", "random", "contextlib",
}  # fmt: skip


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The layer built and extracted as Lambda would mount it on /opt."""
    root = tmp_path_factory.mktemp("layer")
    built = build_layer(root / "layer.zip")
    return extract_layer(built.path, root / "opt")


def shutdown_event(reason: str = "spindown", seconds: float = 2.0) -> dict[str, object]:
    """A SHUTDOWN event with a deadline ``seconds`` from now."""
    deadline = int((time.time() + seconds) * 1000)
    return {"eventType": "SHUTDOWN", "shutdownReason": reason, "deadlineMs": deadline}


INVOKE: dict[str, object] = {"eventType": "INVOKE", "deadlineMs": 1, "requestId": "r"}


def environment(api: FakeExtensionsApi, **settings: str) -> dict[str, str]:
    """A minimal Lambda-like environment for the extension process."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "AWS_LAMBDA_FUNCTION_NAME": "orders",
        "AWS_LAMBDA_FUNCTION_VERSION": "3",
        "CONCURRENCY_OBSERVER_SINK": "emf",
        "CONCURRENCY_OBSERVER_METRICS": "full",
        **settings,
    }


def bootstrap_command(layer: Path, *python_options: str) -> list[str]:
    """What the launcher execs, with this interpreter."""
    bootstrap = layer / EXTENSION_NAME / "bootstrap.py"
    return [sys.executable, *python_options, "-I", "-S", "-B", str(bootstrap), EXTENSION_NAME]


def documents(stdout: str) -> list[dict[str, object]]:
    """The EMF documents the process printed (the environment record's line left out)."""
    return [d for d in lines(stdout) if "_aws" in d]


def lines(stdout: str) -> list[dict[str, object]]:
    """Every JSON line the process printed: EMF documents and the environment record."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def environment_records(stdout: str) -> list[dict[str, object]]:
    """The environment record lines the process printed."""
    return [d for d in lines(stdout) if d.get("concurrencyObserver") == "environment/1"]


def kinds(docs: list[dict[str, object]]) -> list[str]:
    """``init``/``shutdown`` for each EMF document."""
    return ["init" if schema.ENVIRONMENT_INIT in d else "shutdown" for d in docs]


def timestamp(document: dict[str, object]) -> int:
    """The EMF document's timestamp (epoch ms)."""
    metadata = document["_aws"]
    assert isinstance(metadata, dict)
    stamp = metadata["Timestamp"]
    assert isinstance(stamp, int)
    return stamp


def test_three_invokes_then_shutdown(layer: Path) -> None:
    """One init and one shutdown record, 3 invocations, exit 0, two INFO lines in all."""
    events = [INVOKE, INVOKE, INVOKE, shutdown_event()]
    with FakeExtensionsApi(events).running() as api:
        started = time.time()
        process = subprocess.run(
            bootstrap_command(layer),
            env=environment(api),
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        finished = time.time()
    assert process.returncode == 0, process.stderr
    docs = documents(process.stdout)
    assert kinds(docs) == ["init", "shutdown"]
    init, shutdown = docs
    assert shutdown[schema.ENVIRONMENT_INVOCATIONS] == 3
    assert shutdown[schema.SHUTDOWN_REASON] == "spindown"
    (record,) = environment_records(process.stdout)
    assert (record["invocations"], record["shutdownReason"]) == (3, "spindown")
    assert record["initTime"] == timestamp(init)
    assert record["shutdownTime"] == timestamp(shutdown)
    assert len(lines(process.stdout)) == 3  # nothing else on stdout
    assert (init[schema.FUNCTION_NAME], init[schema.FUNCTION_VERSION]) == ("orders", "3")
    assert started * 1000 - 1 <= timestamp(init) <= timestamp(shutdown) <= finished * 1000 + 1
    assert len(process.stderr.splitlines()) == 2, process.stderr
    register, subscribe, *polls = api.requests
    assert register.headers["Lambda-Extension-Name"] == EXTENSION_NAME
    # The Telemetry API subscription goes before the first /event/next (initReport follows it).
    assert (subscribe.method, subscribe.path) == ("PUT", "/2022-07-01/telemetry")
    assert len(polls) == 4
    # The init record was out before the first /event/next.
    assert timestamp(init) <= polls[0].at * 1000


def test_sigterm_while_waiting(layer: Path) -> None:
    """SIGTERM during a blocking /event/next: exactly one shutdown record (sigterm), exit 0."""
    with FakeExtensionsApi([INVOKE]).running() as api:
        process = subprocess.Popen(
            bootstrap_command(layer),
            env=environment(api),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert api.waiting.wait(20), "the extension never blocked on /event/next"
        time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    docs = documents(stdout)
    assert kinds(docs) == ["init", "shutdown"]
    assert docs[1][schema.SHUTDOWN_REASON] == "sigterm"
    assert docs[1][schema.ENVIRONMENT_INVOCATIONS] == 1
    (record,) = environment_records(stdout)
    assert (record["shutdownReason"], record["invocations"]) == ("sigterm", 1)


def test_sigterm_during_shutdown_delivery(layer: Path) -> None:
    """SHUTDOWN, then SIGTERM while its record is being sent: still one shutdown record."""
    with ScriptedHttpServer([Scripted(200, b"<ok/>", delay=0.5)]).running() as cloudwatch:
        settings = {
            "CONCURRENCY_OBSERVER_SINK": "cloudwatch",
            "CONCURRENCY_OBSERVER_INIT_BUDGET_MS": "0",  # the init record waits for shutdown
            "AWS_ENDPOINT_URL_CLOUDWATCH": cloudwatch.url,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "secret",
        }
        with FakeExtensionsApi([INVOKE, shutdown_event(seconds=5)]).running() as api:
            process = subprocess.Popen(
                bootstrap_command(layer),
                env=environment(api, **settings),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert cloudwatch.received.wait(20), "no PutMetricData"
            process.send_signal(signal.SIGTERM)
            _stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert len(cloudwatch.requests) == 1
    names = [
        v for k, v in parse_qsl(cloudwatch.requests[0].body.decode()) if k.endswith(".MetricName")
    ]
    assert names.count(schema.ENVIRONMENT_INIT) == 3  # the pending init record, once per set
    assert names.count(schema.ENVIRONMENT_SHUTDOWN) == 5  # 3 base sets, reason, FirstInvoke
    assert "delivered init+shutdown" in stderr


def test_launcher_registers_under_its_file_name(layer: Path, tmp_path: Path) -> None:
    """The launcher passes its own name: a copy named differently registers under that name."""
    renamed = layer / "extensions" / "renamed-observer"
    renamed.symlink_to(layer / "extensions" / EXTENSION_NAME)
    try:
        with FakeExtensionsApi([shutdown_event()]).running() as api:
            process = subprocess.run(
                [str(renamed)],
                env=environment(api),
                check=False,
                capture_output=True,
                text=True,
                timeout=30,
            )
    finally:
        renamed.unlink()
    assert process.returncode == 0, process.stderr
    assert api.requests[0].headers["Lambda-Extension-Name"] == "renamed-observer"


def test_bad_configuration_does_not_stop_it(layer: Path) -> None:
    """Invalid settings: one warning line each, and the extension still serves and records."""
    settings = {
        "CONCURRENCY_OBSERVER_LOG_LEVEL": "LOUD",
        "CONCURRENCY_OBSERVER_INIT_BUDGET_MS": "soon",
        "CONCURRENCY_OBSERVER_NAMESPACE": "AWS/Lambda",
    }
    with FakeExtensionsApi([INVOKE, shutdown_event()]).running() as api:
        process = subprocess.run(
            bootstrap_command(layer),
            env=environment(api, **settings),
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert process.returncode == 0
    warnings = [line for line in process.stderr.splitlines() if " WARNING " in line]
    assert len(warnings) == 3
    assert all(line.startswith("[concurrency-observer] ") for line in process.stderr.splitlines())
    assert kinds(documents(process.stdout)) == ["init", "shutdown"]


@pytest.mark.parametrize("runtime_api", [None, "not a host:port/"])
def test_without_an_extensions_api_waits_for_sigterm(layer: Path, runtime_api: str | None) -> None:
    """No (or a malformed) AWS_LAMBDA_RUNTIME_API: one clear line, no exit until SIGTERM, then 0."""
    environ = {"PATH": os.environ.get("PATH", ""), "CONCURRENCY_OBSERVER_SINK": "emf"}
    if runtime_api is not None:
        environ["AWS_LAMBDA_RUNTIME_API"] = runtime_api
    process = subprocess.Popen(
        bootstrap_command(layer),
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    first = process.stderr.readline()  # written before it starts waiting
    assert "AWS_LAMBDA_RUNTIME_API" in first
    assert process.poll() is None  # still there: an exit would be Extension.Crash in Lambda
    process.send_signal(signal.SIGTERM)
    _stdout, rest = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "Traceback" not in rest


def imported_modules(stderr: str) -> dict[str, int]:
    """Module name -> self import time (µs) from ``-X importtime`` output."""
    modules: dict[str, int] = {}
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            self_us, _cumulative, name = line.removeprefix("import time:").split("|")
            modules[name.strip()] = int(self_us)
    return modules


def test_emf_cold_start_imports_only_what_a_socket_loop_needs(layer: Path) -> None:
    """With the emf sink: no ssl, http.client, urllib, typing, logging... and no third party."""
    with FakeExtensionsApi([shutdown_event()]).running() as api:
        process = subprocess.run(
            bootstrap_command(layer, "-X", "importtime"),
            env=environment(api),
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert process.returncode == 0, process.stderr
    modules = imported_modules(process.stderr)
    assert "concurrency_observer.extension.sinks.emf" in modules
    top_level = {name.split(".")[0] for name in modules}
    assert not top_level & FORBIDDEN_AT_COLD_START
    third_party = {
        name
        for name in top_level
        if name not in sys.stdlib_module_names and not name.startswith("_")
    }
    assert third_party == {"concurrency_observer"}
    assert "concurrency_observer.extension.sinks.cloudwatch" not in modules


def test_debug_lines(layer: Path) -> None:
    """At DEBUG: the sample's Registering / Registered with ID / Waiting for event lines."""
    with FakeExtensionsApi([INVOKE, shutdown_event()]).running() as api:
        process = subprocess.run(
            bootstrap_command(layer),
            env=environment(api, CONCURRENCY_OBSERVER_LOG_LEVEL="DEBUG"),
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
    lines = process.stderr.splitlines()
    assert "[concurrency-observer] DEBUG Registering..." in lines
    assert f"[concurrency-observer] DEBUG Registered with ID: {EXTENSION_ID}" in lines
    assert lines.count("[concurrency-observer] DEBUG Waiting for event...") == 2


# The Lambda Python runtimes (3.10+) this check covers. The development image provides each of
# them (under ~/.pyenv/versions); in CI a missing one is a failure, so that a changed image cannot
# drop the check silently. Elsewhere it is skipped, saying how to install it.
LAMBDA_PYTHON_MINORS = (10, 11, 12, 13)


def in_ci(environ: dict[str, str] | None = None) -> bool:
    """Whether ``CI`` is set to something true (``true``, ``1``), as CI systems do."""
    value = (os.environ if environ is None else environ).get("CI", "")
    return value.strip().lower() not in ("", "0", "false", "no")


def python_for(minor: int) -> str | None:
    """A working ``python3.<minor>``: on PATH, under ~/.pyenv/versions, or this one."""
    candidates = [sys.executable] if sys.version_info[:2] == (3, minor) else []
    candidates.append(shutil.which(f"python3.{minor}") or "")
    candidates += sorted(
        glob.glob(os.path.expanduser(f"~/.pyenv/versions/3.{minor}.*/bin/python3"))
    )
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "pass"], check=False, capture_output=True)
        if probe.returncode == 0:
            return candidate
    return None


def test_in_ci_reads_the_ci_variable() -> None:
    """CI=true or 1 turns a missing interpreter into a failure; unset or false does not."""
    assert in_ci({"CI": "true"})
    assert in_ci({"CI": "1"})
    assert not in_ci({})
    assert not in_ci({"CI": "false"})


@pytest.mark.parametrize("minor", LAMBDA_PYTHON_MINORS, ids=lambda minor: f"python3.{minor}")
def test_runs_on_other_python_versions(layer: Path, minor: int) -> None:
    """The same layer runs under each Lambda Python version (3.10+); in CI each must be here."""
    python = python_for(minor)
    if python is None:
        message = f"no python3.{minor} on PATH or under ~/.pyenv/versions"
        if in_ci():
            pytest.fail(f"{message}: the image must provide every Lambda Python runtime version")
        pytest.skip(f"{message} (a failure when CI is set)")
    with FakeExtensionsApi([INVOKE, INVOKE, shutdown_event()]).running() as api:
        bootstrap = layer / EXTENSION_NAME / "bootstrap.py"
        process = subprocess.run(
            [python, "-I", "-S", "-B", str(bootstrap), EXTENSION_NAME],
            env=environment(api),
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert process.returncode == 0, process.stderr
    docs = documents(process.stdout)
    assert kinds(docs) == ["init", "shutdown"]
    assert docs[1][schema.ENVIRONMENT_INVOCATIONS] == 2


# What json, re, socket and signal bring in (enum, collections, functools, selectors): about
# 15 ms of CPU at a cold start, and nothing before the first /event/next needs any of it
# (docs/design.md, "Nothing heavy at cold start"). os and its _collections_abc: about 1 ms more,
# where the built-in posix does (extension/lean_os.py).
FORBIDDEN_BEFORE_FIRST_NEXT = {
    "json", "re", "enum", "socket", "signal", "collections", "functools", "selectors", "os",
    "_collections_abc",
}  # fmt: skip


@pytest.mark.parametrize("sink", ["emf", "cloudwatch"])
def test_a_handed_off_engine_reaches_its_first_next_without_json_re_enums_or_os(
    layer: Path, sink: str
) -> None:
    """Started by the front door, subscribed to the Telemetry API, at its first /event/next:
    none of FORBIDDEN_BEFORE_FIRST_NEXT is loaded yet (imports after that run beside the
    function, not inside its init)."""
    settings = {
        "CONCURRENCY_OBSERVER_SINK": sink,
        "CONCURRENCY_OBSERVER_TELEMETRY": "on",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
    }
    with FakeExtensionsApi([]).running() as api:
        milestones, write_end = os.pipe()
        handoff = ["lambda", "--handoff", str(write_end), EXTENSION_ID, "INVOKE,SHUTDOWN", "{}"]
        process = subprocess.Popen(
            [*bootstrap_command(layer, "-X", "importtime"), *handoff],
            env=environment(api, **settings),
            pass_fds=(write_end,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.close(write_end)
        try:
            reached = api.waiting.wait(20)
            said = os.read(milestones, 64)
        finally:
            process.kill()
            _, stderr = process.communicate(timeout=20)
            os.close(milestones)
    assert reached, stderr
    assert said.endswith(b"loop\n")
    assert api.paths()[0].endswith("/telemetry")  # subscribed before its first /event/next
    modules = imported_modules(stderr)
    assert "concurrency_observer.extension.telemetry_listener" in modules
    assert {name.split(".")[0] for name in modules} & FORBIDDEN_BEFORE_FIRST_NEXT == set()
