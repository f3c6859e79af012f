"""The bash fallback and the launcher's choice, run as Lambda runs them against a fake API.

The fallback's EMF lines are checked against the EMF specification's schema (the test the Python
sink passes) and against the document the Python sink writes for the same record.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concurrency_observer import environment_record, schema
from concurrency_observer.extension.records import (
    Environment,
    ShutdownFacts,
    build_init_record,
    build_shutdown_record,
)
from concurrency_observer.extension.sinks.emf import emf_document
from concurrency_observer.layer import (
    EXTENSION_NAME,
    FALLBACK_PATH,
    LAUNCHER_PATH,
    build_layer,
    extract_layer,
)
from concurrency_observer.local import rie, sandbox_mounts

from .extension.fakes import EXTENSION_ID, FakeExtensionsApi
from .extension.test_emf import assert_valid_emf
from .extension.test_http11 import read_request

SOURCES = Path(schema.__file__).resolve().parent / "layer"
BASH = shutil.which("bash") or "/bin/bash"


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The layer built and extracted as Lambda would mount it on /opt."""
    root = tmp_path_factory.mktemp("layer")
    return extract_layer(build_layer(root / "layer.zip", bytecode=False).path, root / "opt")


def shutdown_event(reason: str = "spindown") -> dict[str, object]:
    """A SHUTDOWN event with a deadline 2 s from now."""
    deadline = int((time.time() + 2) * 1000)
    return {"eventType": "SHUTDOWN", "shutdownReason": reason, "deadlineMs": deadline}


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PATH directory with bash and the two coreutils the fallback may use, and no python3."""
    directory = tmp_path_factory.mktemp("bin")
    for tool in ("bash", "date", "sleep"):
        found = shutil.which(tool)
        assert found is not None, tool
        (directory / tool).symlink_to(found)
    return str(directory)


def environment(api: FakeExtensionsApi, **extra: str) -> dict[str, str]:
    """A minimal Lambda-like environment (the tests that run python3 set PATH), with the full
    metric profile, whose lines these tests compare; test_record_contract covers the lean one."""
    return {
        "PATH": "/nonexistent",
        "CONCURRENCY_OBSERVER_METRICS": "full",
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "AWS_LAMBDA_FUNCTION_NAME": "orders",
        "AWS_LAMBDA_FUNCTION_VERSION": "3",
        **extra,
    }


def fallback_command(layer: Path, name: str = EXTENSION_NAME) -> list[str]:
    """The fallback as the launcher execs it."""
    return [BASH, str(layer / FALLBACK_PATH), name]


# Covers the host's /var/lang (where Lambda's Python runtimes have python3), if it has one, in a
# mount namespace of the command's own: what these tests run must not depend on the host.
HIDE_LAMBDA_PYTHON = (
    '[ ! -d /var/lang ] || /usr/bin/mount -t tmpfs tmpfs /var/lang || exit 97; exec "$@"'
)


def in_own_mounts(script: str, command: list[str]) -> list[str]:
    """``command``, after ``script`` (sh -c, ending in ``exec "$@"``), in a mount namespace of
    its own; no pid namespace and no fork: the same pid, so signals reach the command."""
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    flags = ["--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        flags = ["--map-root-user", *flags]
    return [unshare, *flags, "--", "/bin/sh", "-c", script, "sh", *command]


def without_lambda_python(command: list[str]) -> list[str]:
    """``command`` in a mount namespace of its own without ``/var/lang``."""
    return in_own_mounts(HIDE_LAMBDA_PYTHON, command)


def with_lambda_python(command: list[str]) -> list[str]:
    """``command`` in a mount namespace of its own whose /var/lang/bin/python3 is this Python's
    (a tmpfs on /var), as Lambda's Python runtimes have it."""
    setup = sandbox_mounts.lambda_python_commands(sys.executable, var_is_tmpfs=False)
    return in_own_mounts(setup + 'exec "$@"', command)


def started(command: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """``command`` running, its output captured as text."""
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def fallback_fifo(fallback: Path, fifo: Path, call: str) -> tuple[str, str]:
    """A FIFO at ``fifo`` in place of ``fallback``'s text, which is returned in two parts: up to
    and including its one top-level ``call``, and the rest, for a test to write in turn."""
    source = fallback.read_text()
    assert source.count(call) == 1
    head, rest = source.split(call)
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    return head + call, rest


def run_to_end(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a process to its end with captured text output, without the host's /var/lang."""
    return subprocess.run(
        without_lambda_python(command),
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )


def documents(stdout: str) -> list[dict[str, object]]:
    """The EMF documents printed, one per line (the environment record's line left out)."""
    return [d for d in json_lines(stdout) if "_aws" in d]


def json_lines(stdout: str) -> list[dict[str, object]]:
    """Every line printed, each a JSON object: EMF documents and the environment record."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def environment_records(stdout: str) -> list[dict[str, object]]:
    """The environment record lines printed."""
    return [d for d in json_lines(stdout) if d.get("concurrencyObserver") == "environment/1"]


def timestamp(document: dict[str, object]) -> int:
    """The document's Timestamp (epoch ms)."""
    metadata = document["_aws"]
    assert isinstance(metadata, dict)
    stamp = metadata["Timestamp"]
    assert isinstance(stamp, int)
    return stamp


def test_records_are_valid_emf_and_match_the_python_sink(layer: Path) -> None:
    """Init then shutdown, each valid EMF and equal to the Python sink's document for them."""
    env_vars = {"AWS_LAMBDA_INITIALIZATION_TYPE": "Provisioned-Concurrency"}
    with FakeExtensionsApi(
        [{"eventType": "FUTURE"}, shutdown_event("Spin Down!")]
    ).running() as api:
        started = time.time()
        process = run_to_end(fallback_command(layer), environment(api, **env_vars))
        finished = time.time()
    assert process.returncode == 0, process.stderr
    init, shutdown = documents(process.stdout)
    for document in (init, shutdown):
        assert_valid_emf(document)
    environment_ = Environment("orders", "3", "provisioned-concurrency")
    init_stamp, shutdown_stamp = timestamp(init), timestamp(shutdown)
    assert started * 1000 - 1 <= init_stamp <= shutdown_stamp <= finished * 1000 + 1
    assert init == emf_document(
        build_init_record(environment_, init_stamp / 1000), schema.DEFAULT_NAMESPACE
    )
    lifetime = round((shutdown_stamp - init_stamp) / 1000, 3)
    # Registered for INVOKE and SHUTDOWN, never invoked: idle since init, class "never".
    facts = ShutdownFacts("spin-down", shutdown_stamp / 1000, lifetime, lifetime, 0, None)
    expected = emf_document(build_shutdown_record(environment_, facts), schema.DEFAULT_NAMESPACE)
    assert shutdown == expected
    register, first_next, *_ = api.requests
    assert json.loads(register.body) == {"events": ["INVOKE", "SHUTDOWN"]}
    assert register.headers["Lambda-Extension-Name"] == EXTENSION_NAME
    assert first_next.headers["Lambda-Extension-Identifier"] == EXTENSION_ID
    assert init_stamp <= first_next.at * 1000  # the init record was out before the first /next
    lines = process.stderr.splitlines()
    assert len(lines) == 2, process.stderr
    assert all(line.startswith("[concurrency-observer] INFO ") for line in lines)


def test_sigterm_during_next_writes_one_shutdown_record(layer: Path) -> None:
    """SIGTERM while blocked on /event/next, then another: one init, one shutdown, exit 0."""
    with FakeExtensionsApi([]).running() as api:
        process = subprocess.Popen(
            without_lambda_python(fallback_command(layer)),
            env=environment(api),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert api.waiting.wait(20), "the fallback never blocked on /event/next"
        time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    docs = documents(stdout)
    assert [schema.ENVIRONMENT_INIT in d for d in docs] == [True, False]
    assert docs[1][schema.SHUTDOWN_REASON] == "sigterm"
    assert docs[1][schema.ENVIRONMENT_SHUTDOWN] == 1
    (record,) = environment_records(stdout)  # once, though SIGTERM came twice
    assert (record["shutdownReason"], record["shutdownTime"]) == ("sigterm", timestamp(docs[1]))


def test_failures_never_end_it_before_shutdown(layer: Path) -> None:
    """A refused register and failing /event/next calls: it retries, then records at SHUTDOWN."""
    events: list[dict[str, object]] = [{"status": 500}, {"status": 403}, shutdown_event()]
    with FakeExtensionsApi(events, register_status=403).running() as api:
        process = subprocess.Popen(
            without_lambda_python(fallback_command(layer)),
            env=environment(api),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 20
        while api.paths().count("/2020-01-01/extension/register") < 3:
            assert time.monotonic() < deadline, "register was not retried"
            assert process.poll() is None, "the fallback exited after a refused register"
            time.sleep(0.02)
        api.register_status = 200
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    docs = documents(stdout)
    assert [schema.ENVIRONMENT_INIT in d for d in docs] == [True, False]
    assert docs[1][schema.SHUTDOWN_REASON] == "spindown"
    assert api.paths().count("/2020-01-01/extension/event/next") == 3
    assert stderr.count("cannot register") == 1, stderr


def test_namespace_is_validated_like_the_python_config(layer: Path) -> None:
    """A valid namespace is used; an invalid one falls back to the default with one warning."""
    for namespace, expected in (
        (" Team/Orders #1: x_y.z-w ", "Team/Orders #1: x_y.z-w"),
        ("AWS/Lambda", schema.DEFAULT_NAMESPACE),
        ('Quote"d', schema.DEFAULT_NAMESPACE),
    ):
        with FakeExtensionsApi([shutdown_event()]).running() as api:
            env = environment(api, CONCURRENCY_OBSERVER_NAMESPACE=namespace)
            process = run_to_end(fallback_command(layer), env)
        assert process.returncode == 0, process.stderr
        for document in documents(process.stdout):
            assert_valid_emf(document)
            metadata = document["_aws"]
            assert isinstance(metadata, dict)
            assert {d["Namespace"] for d in metadata["CloudWatchMetrics"]} == {expected}
        assert ("not a valid CloudWatch namespace" in process.stderr) == (
            expected == schema.DEFAULT_NAMESPACE
        )


def test_odd_function_names_are_escaped(layer: Path) -> None:
    """Quotes, backslashes and control characters in the names still give valid JSON."""
    name, version = 'or"d\\e\trs\x01', "  "
    with FakeExtensionsApi([shutdown_event()]).running() as api:
        env = environment(api)
        env.update(AWS_LAMBDA_FUNCTION_NAME=name, AWS_LAMBDA_FUNCTION_VERSION=version)
        process = run_to_end(fallback_command(layer), env)
    assert process.returncode == 0, process.stderr
    for document in documents(process.stdout):
        assert_valid_emf(document)
        assert document[schema.FUNCTION_NAME] == name
        assert document[schema.FUNCTION_VERSION] == "$LATEST"


def _bash_function(function: str, result: str, values: list[str]) -> list[str]:
    """Each of ``values`` through the sourced fallback's ``function``, reading ``$result``."""
    script = (
        f'source "$1"; while IFS= read -r -d "" v; do {function} "$v"; '
        f'printf "%s\\0" "${result}"; done'
    )
    output = subprocess.run(
        [BASH, "-c", script, "bash", str(SOURCES / "fallback.sh")],
        input="".join(f"{v}\0" for v in values).encode(),
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    return output.decode().split("\0")[:-1]


def _lowers_to_ascii(text: str) -> bool:
    # Python lower-cases a few non-ASCII letters to ASCII (KELVIN SIGN -> k); bash in the C
    # locale, as the fallback runs, treats every non-ASCII byte as unsafe.
    return any(not c.isascii() and any(x.isascii() for x in c.lower()) for c in text)


TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))


def capped(text: str) -> str:
    """``text`` as both engines keep it: its first MAX_TEXT_LENGTH characters (``cut_text``)."""
    return environment_record.cut_text(text)


# Values of Lambda's 4 KB of variables, in the shapes that made the old helpers quadratic.
LONG_VALUES = [
    "a!" * 2048,
    "\x01" * 4096,
    " " * 2000 + "x" + "\t" * 2000,
    "é" * 2048,
    "-" * 4095 + "A",
    '"\\' * 2048,
]


def test_helpers_cut_long_values_and_stay_exact() -> None:
    """4 KB values of every shape: each helper works on the first 256 characters, as Python."""
    trims = _bash_function("trimmed", "trim", LONG_VALUES)
    tokens = _bash_function("safe_token", "token", LONG_VALUES)
    strings = _bash_function("json_string", "json", LONG_VALUES)
    whitespace = " \t\n\v\f\r\x1c\x1d\x1e\x1f"
    assert trims == [capped(v).strip(whitespace) for v in LONG_VALUES]
    assert tokens == [schema.safe_token(capped(v)) for v in LONG_VALUES]
    assert [json.loads(j) for j in strings] == [capped(v) for v in LONG_VALUES]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TEXT.filter(lambda t: not _lowers_to_ascii(t)), min_size=1, max_size=20))
def test_safe_token_matches_the_schema(values: list[str]) -> None:
    """The fallback's safe_token gives schema.safe_token's token for any text."""
    expected = [schema.safe_token(capped(v)) for v in values]
    assert _bash_function("safe_token", "token", values) == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TEXT, min_size=1, max_size=20))
def test_json_string_round_trips(values: list[str]) -> None:
    """The fallback's json_string is a JSON string that decodes to the value itself."""
    decoded = [json.loads(j) for j in _bash_function("json_string", "json", values)]
    assert decoded == [capped(v) for v in values]


@pytest.mark.parametrize(
    "prelude",
    [":", "unset EPOCHREALTIME", "unset EPOCHREALTIME; date_command=/nonexistent"],
    ids=["epochrealtime", "date", "printf"],
)
def test_every_clock_gives_epoch_milliseconds(prelude: str) -> None:
    """$EPOCHREALTIME (bash 5), date +%s%3N (bash 4.2) and printf %(%s)T agree with the clock."""
    before = time.time()
    script = f'source "$1"; {prelude}; now_ms; echo "$now"'
    output = subprocess.run(
        [BASH, "-c", script, "bash", str(SOURCES / "fallback.sh")],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    after = time.time()
    assert int(before) * 1000 - 1000 <= int(output) <= after * 1000 + 1


# -- the launcher's choice ----------------------------------------------------------------------


def old_python() -> str | None:
    """A python3 older than 3.10 on this machine (pyenv), if any."""
    for minor in (9, 8, 7, 6):
        found = sorted(Path("~/.pyenv/versions").expanduser().glob(f"3.{minor}.*/bin/python3"))
        if found:
            return str(found[0].parent)
    return None


def test_launcher_without_python_runs_the_fallback(layer: Path, tools: str) -> None:
    """No python3 anywhere: the launcher execs the fallback, which records init and shutdown."""
    with FakeExtensionsApi([shutdown_event()]).running() as api:
        process = run_to_end([str(layer / LAUNCHER_PATH)], environment(api, PATH=tools))
    assert process.returncode == 0, process.stderr
    assert len(documents(process.stdout)) == 2
    assert "bash engine" in process.stderr
    assert api.requests[0].headers["Lambda-Extension-Name"] == EXTENSION_NAME


def test_launcher_with_an_old_python_runs_the_fallback(layer: Path, tools: str) -> None:
    """python3 3.9 or older first on PATH: bootstrap.py hands over to the fallback, no exit."""
    old = old_python()
    assert old is not None, "no python3 older than 3.10 under ~/.pyenv/versions"
    with FakeExtensionsApi([shutdown_event()]).running() as api:
        env = environment(api, PATH=f"{old}:{tools}")
        process = run_to_end([str(layer / LAUNCHER_PATH)], env)
    assert process.returncode == 0, process.stderr
    assert len(documents(process.stdout)) == 2
    assert "bash engine" in process.stderr


def test_launcher_prefers_python_unless_shutdown_only_emf(layer: Path, tools: str) -> None:
    """python3.10+ on PATH: Python by default, the fallback for SHUTDOWN only + emf."""
    python_dir = str(Path(sys.executable).parent)
    cases = [
        ({"CONCURRENCY_OBSERVER_SINK": "emf"}, False),
        ({"CONCURRENCY_OBSERVER_SINK": "EMF", "CONCURRENCY_OBSERVER_EVENTS": "shutdown"}, True),
        (
            {
                "CONCURRENCY_OBSERVER_SINK": "emf",
                "CONCURRENCY_OBSERVER_EVENTS": "SHUTDOWN",
                "CONCURRENCY_OBSERVER_ENGINE": "python",
            },
            False,
        ),
        ({"CONCURRENCY_OBSERVER_SINK": "emf", "CONCURRENCY_OBSERVER_ENGINE": "bash"}, True),
    ]
    for settings_, fallback in cases:
        with FakeExtensionsApi([shutdown_event()]).running() as api:
            env = environment(api, PATH=f"{python_dir}:{tools}", **settings_)
            process = run_to_end([str(layer / LAUNCHER_PATH)], env)
        assert process.returncode == 0, process.stderr
        assert len(documents(process.stdout)) == 2
        assert ("bash engine" in process.stderr) == fallback, (settings_, process.stderr)


@pytest.mark.parametrize(
    "script", ["layer/launcher.sh", "layer/fallback.sh", "local/function/bash_runtime.sh"]
)
def test_shellcheck_is_clean(script: str) -> None:
    """shellcheck finds nothing in the launcher (POSIX sh) and the fallback (bash)."""
    shellcheck = shutil.which("shellcheck")
    assert shellcheck is not None, "shellcheck is missing: scripts/test installs it (apt-get)"
    result = subprocess.run(
        [shellcheck, "--severity=style", str(SOURCES.parent / script)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


def test_bootstrap_stays_parseable_by_old_pythons() -> None:
    """bootstrap.py compiles under Python 2.7 and 3.6 (it must reach its version check)."""
    pythons = sorted(Path("~/.pyenv/versions").expanduser().glob("[23].[67].*/bin/python"))
    assert pythons, "no Python 2.7 or 3.6 under ~/.pyenv/versions"
    for python in pythons:
        code = "import sys; compile(open(sys.argv[1]).read(), sys.argv[1], 'exec')"
        bootstrap = str(SOURCES / "bootstrap.py")
        subprocess.run([str(python), "-c", code, bootstrap], check=True, timeout=30)


# Covers both places the launcher looks for bash besides PATH (/dev/null is not executable).
WITHOUT_BASH = (
    'for b in /bin/bash /usr/bin/bash; do [ -e "$b" ] && /usr/bin/mount --bind /dev/null "$b"; '
    "done; "
    'exec "$1"'
)


def in_mount_namespace(script: str, *args: str) -> list[str]:
    """The command that runs ``script`` (sh -c) in a mount namespace of its own, with ``args``."""
    rie.check_host()
    shell = shutil.which("sh") or "/bin/sh"
    unshare = [shutil.which("unshare") or "unshare", *rie.unshare_flags()]
    return [*unshare, "--", shell, "-c", script, "sh", *args]


def test_launcher_without_bash_says_so_in_one_line(layer: Path) -> None:
    """Neither python3 nor bash: one line saying the layer cannot run here (see without_bash)."""
    command = in_mount_namespace(WITHOUT_BASH, str(layer / LAUNCHER_PATH))
    process = run_to_end(command, {"PATH": "/nonexistent"})
    assert process.stdout == ""
    assert process.stderr.count("\n") == 1, process.stderr
    assert "no python3 >= 3.10 and no bash" in process.stderr


def test_launcher_finds_bash_outside_path(layer: Path) -> None:
    """A PATH without bash (the user's to set): /bin/bash or /usr/bin/bash runs the fallback."""
    with FakeExtensionsApi([shutdown_event()]).running() as api:
        process = run_to_end([str(layer / LAUNCHER_PATH)], environment(api, PATH="/nonexistent"))
    assert process.returncode == 0, process.stderr
    assert len(documents(process.stdout)) == 2
    assert "bash engine" in process.stderr


# Runs the sourced fallback with its wall clock jumping an hour ahead while it waits on its first
# /event/next, as a SnapStart restore does (the uptime clock, frozen in the snapshot, does not).
RESTORE_EMULATION = """
source "$1"
eval "real_$(declare -f now_ms)"
eval "real_$(declare -f fast_now_ms)"
eval "real_$(declare -f request)"
jump=0
now_ms() { real_now_ms; now=$((now + jump)); }
fast_now_ms() { real_fast_now_ms "$@"; now=$((now + jump)); }
request() {
    real_request "$@"
    local answered=$?
    [[ $2 == */event/next ]] && jump=3600000
    return $answered
}
main concurrency-observer
"""


@pytest.mark.parametrize("init_type", ["snap-start", "on-demand"])
def test_a_snapstart_restore_writes_an_init_record_of_its_own(tools: str, init_type: str) -> None:
    """snap-start: a jump of the wall clock against uptime is a restore, with its own init."""
    with FakeExtensionsApi([shutdown_event()]).running() as api:
        env = environment(api, PATH=tools, AWS_LAMBDA_INITIALIZATION_TYPE=init_type)
        process = run_to_end(
            [BASH, "-c", RESTORE_EMULATION, "bash", str(SOURCES / "fallback.sh")], env
        )
    assert process.returncode == 0, process.stderr
    docs = documents(process.stdout)
    inits = [d for d in docs if schema.ENVIRONMENT_INIT in d]
    (shutdown,) = [d for d in docs if schema.ENVIRONMENT_SHUTDOWN in d]
    lifetime = shutdown[schema.ENVIRONMENT_LIFETIME]
    assert isinstance(lifetime, float)
    if init_type == "snap-start":
        snapshot, restored = inits
        # /proc/uptime counts in 10 ms steps: the restore is placed to within them
        assert 3599_900 <= timestamp(restored) - timestamp(snapshot) < 3630_000
        assert timestamp(restored) <= timestamp(shutdown)
        assert lifetime < 30  # from the restore, not from the snapshot's init
        (record,) = environment_records(process.stdout)
        assert record["initTime"] == timestamp(restored)
        assert "restored from a snapshot" in process.stderr
    else:  # only SnapStart restores; elsewhere a clock step is only a clock step
        assert len(inits) == 1
        assert lifetime >= 3600


@pytest.mark.parametrize(("level", "lines"), [("error", 0), ("WARNING", 0), ("debug", 2)])
def test_the_log_level_is_honoured(layer: Path, level: str, lines: int) -> None:
    """CONCURRENCY_OBSERVER_LOG_LEVEL above INFO silences the two INFO lines; records stay."""
    with FakeExtensionsApi([shutdown_event()]).running() as api:
        env = environment(api, CONCURRENCY_OBSERVER_LOG_LEVEL=level)
        process = run_to_end(fallback_command(layer), env)
    assert process.returncode == 0, process.stderr
    assert len(process.stderr.splitlines()) == lines, process.stderr
    assert len(documents(process.stdout)) == 2


# Gives the process a /var/lang/bin/python3 (this interpreter) in a mount namespace of its own,
# as the Python runtimes have, then runs the launcher ($1).
WITH_LAMBDA_PYTHON = (
    "PATH=/usr/bin:/bin:/usr/sbin:/sbin mount -t tmpfs tmpfs /var && /bin/mkdir -p /var/lang/bin "
    '&& /bin/ln -s "$2" /var/lang/bin/python3 && exec "$1"'
)


@pytest.mark.parametrize("first_on_path", ["old-python", "no-python"])
def test_launcher_finds_var_lang_python(layer: Path, tools: str, first_on_path: str) -> None:
    """An old or no python3 on PATH, a 3.10+ /var/lang/bin/python3: the Python extension runs."""
    search_path = tools
    if first_on_path == "old-python":
        old = old_python()
        assert old is not None, "no python3 older than 3.10 under ~/.pyenv/versions"
        search_path = f"{old}:{tools}"
    command = in_mount_namespace(WITH_LAMBDA_PYTHON, str(layer / LAUNCHER_PATH), sys.executable)
    with FakeExtensionsApi([shutdown_event()]).running() as api:
        env = environment(api, PATH=search_path, CONCURRENCY_OBSERVER_SINK="emf")
        process = run_to_end(command, env)
    assert process.returncode == 0, process.stderr
    assert len(documents(process.stdout)) == 2
    assert "bash engine" not in process.stderr
    assert "sink emf" in process.stderr  # the Python extension's init line


def test_an_old_var_lang_python_hands_over_to_python3_on_path(layer: Path, tools: str) -> None:
    """/var/lang/bin/python3 older than 3.10, a 3.10+ python3 on PATH: that one runs."""
    old = old_python()
    assert old is not None, "no python3 older than 3.10 under ~/.pyenv/versions"
    python_dir = str(Path(sys.executable).parent)
    command = in_mount_namespace(
        WITH_LAMBDA_PYTHON, str(layer / LAUNCHER_PATH), str(Path(old) / "python3")
    )
    with FakeExtensionsApi([shutdown_event()]).running() as api:
        env = environment(api, PATH=f"{python_dir}:{tools}", CONCURRENCY_OBSERVER_SINK="emf")
        process = run_to_end(command, env)
    assert process.returncode == 0, process.stderr
    assert len(documents(process.stdout)) == 2
    assert "sink emf" in process.stderr, process.stderr


def test_runs_in_bash_42_compatibility_mode_without_epochrealtime(tools: str) -> None:
    """BASH_COMPAT=4.2 and no $EPOCHREALTIME (as bash 4.2 on Amazon Linux 2): same records."""
    # After the source: the fallback unsets a BASH_COMPAT of the environment (not its to choose).
    script = 'unset EPOCHREALTIME; source "$1"; BASH_COMPAT=4.2; main concurrency-observer'
    with FakeExtensionsApi([shutdown_event()]).running() as api:
        env = environment(api, PATH=tools)
        started = time.time()
        process = run_to_end([BASH, "-c", script, "bash", str(SOURCES / "fallback.sh")], env)
        finished = time.time()
    assert process.returncode == 0, process.stderr
    init, shutdown = documents(process.stdout)
    for document in (init, shutdown):
        assert_valid_emf(document)
    assert int(started * 1000) - 1 <= timestamp(init) <= timestamp(shutdown) <= finished * 1000 + 1


def test_posix_mode_from_the_environment_survives_a_refused_connection(
    layer: Path, tmp_path: Path
) -> None:
    """POSIXLY_CORRECT=1: a refused connection (an exec redirection failing) ends nothing."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    errors = tmp_path / "stderr"
    env = {"PATH": "/nonexistent", "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}"}
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            without_lambda_python([BASH, "-p", str(layer / FALLBACK_PATH), EXTENSION_NAME]),
            env={**env, "POSIXLY_CORRECT": "1"},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        deadline = time.monotonic() + 20
        while "cannot register" not in errors.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        alive = process.poll() is None
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=20)
    assert "cannot register" in errors.read_text()
    assert alive
    assert process.returncode == 0
    assert len(documents(stdout)) == 2  # SIGTERM before registering: init and shutdown records


def test_epochrealtime_from_the_environment_never_reaches_arithmetic(tmp_path: Path) -> None:
    """On bash 4.2 $EPOCHREALTIME is the environment's: code in it is not run, the clock holds."""
    mark = tmp_path / "ran"
    script = 'unset EPOCHREALTIME; EPOCHREALTIME="$2"; source "$1"; now_ms; echo "$now"'
    value = f"0+a[$(/usr/bin/touch {mark})]"
    before = time.time()
    output = subprocess.run(
        [BASH, "-c", script, "bash", str(SOURCES / "fallback.sh"), value],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert not mark.exists()
    assert int(before) * 1000 - 1000 <= int(output) <= time.time() * 1000 + 1


@pytest.mark.parametrize(
    ("behaviour", "engine"),
    [
        ("exit 0", "bash engine"),
        ('echo "junk"; exit 1', "bash engine"),
        ("exec /usr/bin/sleep 600", "bash engine"),
        ('exec "$REAL_PYTHON" "$@"', "sink emf"),
    ],
    ids=["exits-0", "junk", "hangs", "a-wrapper-of-a-real-python"],
)
def test_launcher_probes_the_python3_on_path(
    layer: Path, tools: str, tmp_path: Path, behaviour: str, engine: str
) -> None:
    """No /var/lang/bin/python3: a python3 on PATH runs the extension only if it proves it can."""
    fake = tmp_path / "python3"
    fake.write_text(f"#!/bin/sh\n{behaviour}\n")
    fake.chmod(0o755)
    with FakeExtensionsApi([shutdown_event()]).running() as api:
        env = environment(
            api,
            PATH=f"{tmp_path}:{tools}",
            CONCURRENCY_OBSERVER_SINK="emf",
            REAL_PYTHON=sys.executable,
        )
        process = run_to_end([str(layer / LAUNCHER_PATH)], env)
    assert process.returncode == 0, process.stderr
    assert len(documents(process.stdout)) == 2
    assert engine in process.stderr, process.stderr
    assert "junk" not in process.stdout + process.stderr


# -- the bash engine counts INVOKE --------------------------------------------------------------


def invoke_event(number: int) -> dict[str, object]:
    """An INVOKE event as Lambda sends it to an extension."""
    return {
        "eventType": "INVOKE",
        "requestId": f"request-{number}",
        "deadlineMs": int((time.time() + 3) * 1000),
        "invokedFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:orders",
        "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-0"},
    }


def test_the_bash_engine_counts_invokes_as_the_python_engine_would(layer: Path) -> None:
    """Three INVOKE events: the record and the full profile's shutdown line say what Python's do."""
    events = [invoke_event(n) for n in range(3)] + [{"eventType": "FUTURE"}, shutdown_event()]
    with FakeExtensionsApi(events).running() as api:
        process = run_to_end(fallback_command(layer), environment(api))
    assert process.returncode == 0, process.stderr
    (record,) = environment_records(process.stdout)
    assert (record["invocations"], record["firstInvoke"]) == (3, "prompt")
    ttfi, idle, lifetime = record["timeToFirstInvokeMs"], record["idleMs"], record["lifetimeMs"]
    assert isinstance(ttfi, int)
    assert isinstance(idle, int)
    assert isinstance(lifetime, int)
    assert 0 <= idle <= lifetime - ttfi
    _, shutdown = documents(process.stdout)
    assert_valid_emf(shutdown)
    facts = ShutdownFacts(
        "spindown", timestamp(shutdown) / 1000, lifetime / 1000, idle / 1000, 3, ttfi / 1000
    )
    environment_ = Environment("orders", "3", "on-demand")
    expected = build_shutdown_record(environment_, facts)
    assert shutdown == emf_document(expected, schema.DEFAULT_NAMESPACE)
    assert "3 invocations" in process.stderr


@pytest.mark.parametrize(
    ("invocations", "first_invoke", "threshold", "expected"),
    [
        ("0", "", "10000", "never/"),
        ("2", "1010000", "10000", "prompt/10000"),
        ("2", "1010001", "10000", "delayed/10001"),
        ("1", "1000000", "0", "prompt/0"),
        ("1", "1000001", "0", "delayed/1"),
    ],
)
def test_the_first_invoke_class_uses_the_python_thresholds(
    invocations: str, first_invoke: str, threshold: str, expected: str
) -> None:
    """never, prompt (within the threshold, inclusive) and delayed, as classify_first_invoke."""
    script = (
        'source "$1"; counting=1; started_ms=1000000; invocations=$2; first_invoke_ms=$3; '
        'last_invoke_ms=$3; threshold_ms=$4; invoke_facts 1050000; echo "$first_class/$ttfi"'
    )
    arguments = [invocations, first_invoke, threshold]
    output = subprocess.run(
        [BASH, "-c", script, "bash", str(SOURCES / "fallback.sh"), *arguments],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert output.strip() == expected


def forks_while_serving(layer: Path, invokes: int, prelude: str) -> int:
    """How many processes the bash engine starts (clone, fork, execve) over ``invokes`` INVOKEs."""
    strace = shutil.which("strace") or "/usr/bin/strace"
    assert Path(strace).exists(), "strace is missing (apt-get install strace)"
    script = f'{prelude}; source "$1"; main concurrency-observer'
    events = [invoke_event(n) for n in range(invokes)] + [shutdown_event()]
    with FakeExtensionsApi(events).running() as api:
        traced = [BASH, "-c", script, "bash", str(layer / FALLBACK_PATH)]
        trace = subprocess.run(
            [
                strace,
                "-f",
                "-qq",
                "-e",
                "trace=clone,clone3,fork,vfork,execve",
                "-o",
                "/dev/stderr",
                *traced,
            ],
            env=environment(api, CONCURRENCY_OBSERVER_ENGINE="bash"),
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert trace.returncode == 0, trace.stderr
    (record,) = environment_records(trace.stdout)
    assert record["invocations"] == invokes
    # strace -f splits a call that another process interrupts into "<unfinished ...>" and
    # "<... clone resumed>" lines: count each call once, by the line that starts it.
    lines = [line for line in trace.stderr.splitlines() if "resumed>" not in line]
    calls = [line for line in lines if "clone" in line or "fork" in line]
    return len(calls) + sum("execve(" in line for line in lines) - 1  # less bash's own execve


@pytest.mark.parametrize("prelude", [":", "unset EPOCHREALTIME"], ids=["bash-5", "bash-4.2"])
def test_the_per_invoke_path_starts_no_process(layer: Path, prelude: str) -> None:
    """50 INVOKEs start no more processes than one: no fork, subshell or command per invoke."""
    assert forks_while_serving(layer, 50, prelude) == forks_while_serving(layer, 1, prelude)


def test_a_huge_event_is_read_bounded(layer: Path) -> None:
    """An event body far over the bound: read up to it, counted, and the engine goes on."""
    big = {**invoke_event(0), "padding": "x" * 1_000_000}
    with FakeExtensionsApi([big, invoke_event(1), shutdown_event()]).running() as api:
        process = run_to_end(fallback_command(layer), environment(api))
    assert process.returncode == 0, process.stderr
    (record,) = environment_records(process.stdout)
    assert record["invocations"] == 2


@pytest.mark.parametrize("mode", ["init-type", "refused"])
def test_managed_instances_register_for_shutdown_alone(layer: Path, mode: str) -> None:
    """LMI's init type: SHUTDOWN only at once; INVOKE refused (403): again for SHUTDOWN, no log."""
    extra = {"AWS_LAMBDA_INITIALIZATION_TYPE": "lambda-managed-instances"}
    if mode == "refused":
        extra = {}
    with FakeExtensionsApi([shutdown_event()], refuse_invoke=True).running() as api:
        process = run_to_end(fallback_command(layer), environment(api, **extra))
    assert process.returncode == 0, process.stderr
    registers = [json.loads(r.body) for r in api.requests if r.path.endswith("/register")]
    expected = [{"events": ["SHUTDOWN"]}]
    if mode == "refused":
        expected = [{"events": ["INVOKE", "SHUTDOWN"]}, *expected]
    assert registers == expected
    (record,) = environment_records(process.stdout)
    assert "invocations" not in record
    assert "WARNING" not in process.stderr
    assert "ERROR" not in process.stderr


# -- the hand-off to the Python engine ----------------------------------------------------------

# A python3 on PATH that passes the probe and runs the real bootstrap.py, but first makes the
# Python engine die (SIGKILL) at a point of its hand-off: $FAULT is "start" (before anything),
# "owning" (after the init record, right before its first /event/next) or "import".
FAULTY_PYTHON = r"""#!/bin/sh
case "$4" in
    */bootstrap.py) ;;
    *) exec "$REAL_PYTHON" "$@" ;;
esac
script=$4
shift 4
exec "$REAL_PYTHON" -I -S -B -c '
import os, signal, sys
sys.argv = sys.argv[1:]  # as if bootstrap.py were the script
fault = os.environ["FAULT"]
if fault == "hang":
    signal.pause()
if fault == "start":
    os.kill(os.getpid(), signal.SIGKILL)
if fault == "import":
    sys.modules["concurrency_observer"] = None
else:
    sys.path.insert(0, os.path.dirname(sys.argv[0]))
    from concurrency_observer.extension import handoff
    handoff.Milestones.owning_the_loop = lambda self: os.kill(os.getpid(), signal.SIGKILL)
code = compile(open(sys.argv[0]).read(), sys.argv[0], "exec")
exec(code, {"__file__": sys.argv[0], "__name__": "__main__"})
' "$script" "$@"
"""


def handoff_environment(api: FakeExtensionsApi, path: str, **extra: str) -> dict[str, str]:
    """The environment for a hand-off: the emf sink, the Telemetry API off (the fake stubs it)."""
    return environment(
        api,
        PATH=path,
        CONCURRENCY_OBSERVER_SINK="emf",
        CONCURRENCY_OBSERVER_METRICS="lean",
        CONCURRENCY_OBSERVER_TELEMETRY="off",
        **extra,
    )


def test_the_python_engine_takes_the_shells_registration(layer: Path, tools: str) -> None:
    """One register, by the shell; Python polls with its identifier and writes the records."""
    python_dir = str(Path(sys.executable).parent)
    events = [invoke_event(0), invoke_event(1), shutdown_event()]
    with FakeExtensionsApi(events).running() as api:
        env = handoff_environment(api, f"{python_dir}:{tools}")
        process = run_to_end([str(layer / LAUNCHER_PATH)], env)
    assert process.returncode == 0, process.stderr
    assert api.paths().count("/2020-01-01/extension/register") == 1
    nexts = [r for r in api.requests if r.path.endswith("/event/next")]
    assert len(nexts) == 3
    assert {r.headers["Lambda-Extension-Identifier"] for r in nexts} == {EXTENSION_ID}
    (record,) = environment_records(process.stdout)
    assert (record["engine"], record["invocations"]) == ("python", 2)
    deltas = [d[schema.ENVIRONMENT_DELTA] for d in documents(process.stdout)]
    assert deltas == [1, -1]
    assert "bash engine" not in process.stderr


@pytest.mark.parametrize(
    ("fault", "init_type", "init_by"),
    [
        ("start", "on-demand", "bash"),
        ("import", "on-demand", "bash"),
        # On-demand, Python kept its init record for shutdown and did not say "init".
        ("owning", "on-demand", "bash"),
        ("owning", "provisioned-concurrency", "python"),
    ],
)
def test_a_python_that_dies_before_its_first_next_leaves_the_shell_serving(
    layer: Path, tools: str, tmp_path: Path, *, fault: str, init_type: str, init_by: str
) -> None:
    """Python killed (or failing its import) before /next: the shell serves with the same id,
    counts every INVOKE, and the environment has one init and one shutdown record."""
    fake = tmp_path / "python3"
    fake.write_text(FAULTY_PYTHON)
    fake.chmod(0o755)
    events = [invoke_event(0), invoke_event(1), shutdown_event()]
    with FakeExtensionsApi(events).running() as api:
        env = handoff_environment(
            api,
            f"{tmp_path}:{tools}",
            REAL_PYTHON=sys.executable,
            FAULT=fault,
            AWS_LAMBDA_INITIALIZATION_TYPE=init_type,
        )
        process = run_to_end([str(layer / LAUNCHER_PATH)], env)
    assert process.returncode == 0, process.stderr
    assert api.paths().count("/2020-01-01/extension/register") == 1
    nexts = [r for r in api.requests if r.path.endswith("/event/next")]
    assert {r.headers["Lambda-Extension-Identifier"] for r in nexts} == {EXTENSION_ID}
    (record,) = environment_records(process.stdout)
    assert (record["engine"], record["invocations"]) == ("bash", 2)
    deltas = [d[schema.ENVIRONMENT_DELTA] for d in documents(process.stdout)]
    assert deltas == [1, -1]  # one init (Python's, when it said so) and one shutdown
    said_init = "whose init record stands" in process.stderr
    assert said_init == (init_by == "python"), process.stderr
    assert "still exists" not in process.stderr  # each coprocess reaped before the next


def test_an_old_python_hands_back_without_a_word(layer: Path, tools: str) -> None:
    """A python3 older than 3.10 (probe refused): the bash engine, no warning."""
    old = old_python()
    assert old is not None, "no python3 older than 3.10 under ~/.pyenv/versions"
    with FakeExtensionsApi([invoke_event(0), shutdown_event()]).running() as api:
        process = run_to_end(
            [str(layer / LAUNCHER_PATH)], handoff_environment(api, f"{old}:{tools}")
        )
    assert process.returncode == 0, process.stderr
    (record,) = environment_records(process.stdout)
    assert (record["engine"], record["invocations"]) == ("bash", 1)
    assert "WARNING" not in process.stderr


def test_sigterm_while_python_owns_the_loop_is_passed_on(layer: Path, tools: str) -> None:
    """SIGTERM to the shell (the process Lambda started) reaches Python: one record, Python's."""
    python_dir = str(Path(sys.executable).parent)
    with FakeExtensionsApi([invoke_event(0)]).running() as api:
        process = subprocess.Popen(
            without_lambda_python([str(layer / LAUNCHER_PATH)]),
            env=handoff_environment(api, f"{python_dir}:{tools}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert api.waiting.wait(30), "nothing blocked on /event/next"
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    (record,) = environment_records(stdout)
    assert (record["engine"], record["shutdownReason"], record["invocations"]) == (
        "python",
        "sigterm",
        1,
    )


@pytest.mark.parametrize("engine", ["bash", "python"])
def test_a_launcher_whose_sh_is_bash_reads_the_front_door_itself(
    layer: Path, tools: str, tmp_path: Path, engine: str
) -> None:
    """/bin/sh is bash (Amazon Linux): the launcher sources fallback.sh instead of starting a
    second bash, in POSIX mode as sh starts it; the process Lambda started is still the launcher
    while it serves, and each engine runs to a clean end."""
    sh = tmp_path / "sh"
    sh.symlink_to(BASH)  # bash started as "sh": POSIX mode, as /bin/sh on Amazon Linux
    python_dir = str(Path(sys.executable).parent)
    launcher = str(layer / LAUNCHER_PATH)
    with FakeExtensionsApi([invoke_event(0)]).running() as api:
        env = handoff_environment(api, f"{python_dir}:{tools}", CONCURRENCY_OBSERVER_ENGINE=engine)
        process = started(without_lambda_python([str(sh), "-p", launcher]), env)
        assert api.waiting.wait(30), "nothing blocked on /event/next"
        command_line = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    assert command_line[:3] == [str(sh).encode(), b"-p", launcher.encode()]  # not exec'd
    assert process.returncode == 0, stderr
    assert api.paths().count("/2020-01-01/extension/register") == 1
    (record,) = environment_records(stdout)
    assert (record["engine"], record["invocations"]) == (engine, 1)
    assert "WARNING" not in stderr, stderr
    assert "ERROR" not in stderr, stderr


def test_a_python_that_hangs_is_stopped_and_the_shell_serves(
    layer: Path, tools: str, tmp_path: Path
) -> None:
    """No "loop" within the hand-off's wait (shortened to 1 s here): killed, the shell serves."""
    fake = tmp_path / "python3"
    fake.write_text(FAULTY_PYTHON)
    fake.chmod(0o755)
    script = 'source "$1"; handoff_wait_s=1; main concurrency-observer'
    events = [invoke_event(0), shutdown_event()]
    with FakeExtensionsApi(events).running() as api:
        env = handoff_environment(
            api, f"{tmp_path}:{tools}", REAL_PYTHON=sys.executable, FAULT="hang"
        )
        process = run_to_end([BASH, "-c", script, "bash", str(layer / FALLBACK_PATH)], env)
    assert process.returncode == 0, process.stderr
    (record,) = environment_records(process.stdout)
    assert (record["engine"], record["invocations"]) == ("bash", 1)
    assert "ended with status 137 before its first /event/next" in process.stderr
    assert "still exists" not in process.stderr  # no coprocess left behind


# Long values of every kind of byte run: valid text of any width, stray continuation bytes, lone
# lead bytes, overlongs, surrogates, bytes past U+10FFFF; no NUL (no environment holds one).
_PIECES = st.one_of(
    TEXT.map(str.encode),
    st.binary(max_size=8),
    st.sampled_from([b"\x80" * 5, b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xed\xa0\x80"]),
)
HOSTILE_BYTES = st.lists(_PIECES, min_size=1, max_size=120).map(
    lambda pieces: b"".join(pieces).replace(b"\x00", b"")
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(HOSTILE_BYTES, min_size=1, max_size=10))
def test_capped_cuts_any_bytes_as_the_python_engine_does(values: list[bytes]) -> None:
    """capped keeps, of any bytes, exactly what cut_text keeps of them as os.environ decodes."""
    script = 'source "$1"; while IFS= read -r -d "" v; do capped "$v"; printf "%s\\0" "$text"; done'
    output = subprocess.run(
        [BASH, "-c", script, "bash", str(SOURCES / "fallback.sh")],
        input=b"".join(v + b"\0" for v in values),
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    expected = [os.fsencode(environment_record.cut_text(os.fsdecode(v))) for v in values]
    assert output.split(b"\0")[:-1] == expected


def test_register_comes_before_the_engine_is_read(layer: Path, tmp_path: Path) -> None:
    """The fallback fed through a FIFO: up to the front door's call, Register goes out with the
    rest of the file not yet written (bash reads a script one command at a time), so the engine's
    and the hand-off's functions are read after Register, beside the runtime's init."""
    fifo = tmp_path / "fallback.sh"
    head, rest = fallback_fifo(layer / FALLBACK_PATH, fifo, '    front_door "$@"\nfi\n')
    with FakeExtensionsApi([shutdown_event()]).running() as api:
        command = without_lambda_python([BASH, "-p", str(fifo), EXTENSION_NAME])
        process = started(command, environment(api))
        with fifo.open("w") as script:
            script.write(head)
            script.flush()
            deadline = time.monotonic() + 20
            while not api.paths() and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.02)
            registered_early = [path.rsplit("/", 1)[-1] for path in api.paths()]
            script.write(rest)
        stdout, stderr = process.communicate(timeout=20)
    assert registered_early == ["register"], stderr
    assert process.returncode == 0, stderr
    assert [schema.ENVIRONMENT_INIT in d for d in documents(stdout)] == [True, False]
    assert len(environment_records(stdout)) == 1


@pytest.mark.parametrize("end", ["shutdown", "sigterm"])
def test_lambda_python_starts_before_the_engine_is_read(
    layer: Path, tmp_path: Path, end: str
) -> None:
    """The fallback fed through a FIFO up to launch_early's call, and never further: Lambda's
    python3 starts, owns the loop, serves an INVOKE, then SHUTDOWN (or the SIGTERM passed on to
    it), and the whole process ends well without bash reading a line of the rest (the engine,
    main): no parse of it inside the init. The records are Python's, once."""
    fallback = layer / FALLBACK_PATH
    code = Path(shutil.copytree(fallback.parent, tmp_path / "code"))  # bootstrap.py beside it
    fifo = code / fallback.name
    head, _rest = fallback_fifo(fallback, fifo, "    launch_early\nfi\n")
    events = [invoke_event(0)] + ([shutdown_event()] if end == "shutdown" else [])
    with FakeExtensionsApi(events).running() as api:
        command = with_lambda_python([BASH, "-p", str(fifo), EXTENSION_NAME])
        env = handoff_environment(api, "/usr/bin:/bin")
        process = started(command, env)
        # Held open, unwritten past the head, until the process has ended: bash reading on
        # would wait here for good.
        with fifo.open("w") as script:
            script.write(head)
            script.flush()
            try:
                if end == "sigterm":
                    assert api.waiting.wait(30)  # Python, past the INVOKE, on its next /next
                    process.send_signal(signal.SIGTERM)
                stdout, stderr = process.communicate(timeout=30)
            finally:
                process.kill()  # a no-op once it has ended; else the test failed: stop it
    assert process.returncode == 0, stderr
    assert api.paths().count("/2020-01-01/extension/register") == 1
    (record,) = environment_records(stdout)
    assert (record["engine"], record["invocations"]) == ("python", 1)
    assert len(documents(stdout)) == 2  # init and shutdown
    assert "WARNING" not in stderr, stderr


def _serve_answers(server: socket.socket, answers: list[bytes]) -> None:
    """One answer per connection, in order (the first to Register), then close; a peer that
    closes early (the engine stops reading at its bound) is not an error. The request is read
    whole, body too: closing a socket with unread bytes sends a reset, and a reset can reach
    the engine before the answer does (Register's body comes in a write of its own)."""
    for answer in answers:
        connection, _ = server.accept()
        with connection:
            connection.settimeout(10)
            head, _, body = read_request(connection).partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            while len(body) < length and (chunk := connection.recv(65536)):
                body += chunk
            with contextlib.suppress(OSError):
                connection.sendall(answer)


def test_hostile_answer_heads_stay_bounded(layer: Path) -> None:
    """Answers the engine reads whole and in bulk: a header line of 1 MB, 200 header lines before
    Content-Length, bare line feeds. Each is read within its bounds, and the engine goes on."""
    invoke = json.dumps(invoke_event(0)).encode()
    shutdown = json.dumps(shutdown_event()).encode()
    registered = (
        b"HTTP/1.1 200 OK\r\nLambda-Extension-Identifier: " + EXTENSION_ID.encode()
        + b"\r\nContent-Length: 2\r\n\r\n{}"
    )  # fmt: skip
    ok = b"HTTP/1.1 200 OK\r\n"
    answers = [
        registered,
        # A 1 MB header line: the head never ends within the bound, so no event is read.
        ok + b"X-Long: " + b"x" * 1_000_000 + b"\r\n\r\n" + invoke,
        # 200 headers before Content-Length: past MAX_HEADERS the body is what follows the head.
        ok + b"X-A: b\r\n" * 200 + b"Content-Length: %d\r\n\r\n" % len(invoke) + invoke,
        # Bare line feeds.
        b"HTTP/1.1 200 OK\nContent-Length: %d\n\n" % len(invoke) + invoke,
        ok + b"Content-Length: %d\r\n\r\n" % len(invoke) + invoke,
        ok + b"Content-Length: %d\r\n\r\n" % len(shutdown) + shutdown,
    ]
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        env = {
            "PATH": "/nonexistent",
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.getsockname()[1]}",
        }

        serving = threading.Thread(target=_serve_answers, args=(server, answers), daemon=True)
        serving.start()
        process = run_to_end(without_lambda_python(fallback_command(layer)), env)
        serving.join(10)
    assert process.returncode == 0, process.stderr
    (record,) = environment_records(process.stdout)
    assert record["invocations"] == 3
    assert record["shutdownReason"] == "spindown"
