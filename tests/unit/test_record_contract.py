"""The environment record's contract, pinned as literals, and one schema both engines' records pass.

``report`` and users' log queries read these keys from records already in log groups: renaming a
field, changing a value set or a field's type must fail here. Every other test compares against
``environment_record.*``, so this file spells each name out instead. The records checked are those
the Python builder makes and the lines the bash fallback writes, against the same ``SCHEMA``.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from concurrency_observer import environment_record, schema
from concurrency_observer.extension.config import Config
from concurrency_observer.extension.environment_line import (
    PLATFORM_FIELDS,
    build_environment_record,
    environment_line,
)
from concurrency_observer.extension.records import (
    Environment,
    ShutdownFacts,
    build_delta_record,
)
from concurrency_observer.extension.sinks.emf import emf_document

from .extension.fakes import FakeExtensionsApi
from .extension.test_emf import assert_valid_emf
from .test_fallback import BASH, SOURCES, json_lines, run_to_end, shutdown_event

MARKER_KEY = "concurrencyObserver"
VERSION = "environment/1"
ENGINES = ("python", "bash")
PROFILES = ("lean", "full")
FIRST_INVOKE_CLASSES = ("never", "prompt", "delayed")
MAX_TEXT_LENGTH = 256

# Each field and what its value is: text (bounded), an epoch-ms integer, a non-negative number
# (milliseconds, at most 3 decimals), a count, or one of a value set.
TEXT, EPOCH_MS, DURATION_MS, COUNT = "text", "epoch-ms", "duration-ms", "count"
REQUIRED = {
    "concurrencyObserver": (VERSION,),
    "functionName": TEXT,
    "functionVersion": TEXT,
    "initType": TEXT,
    "environmentId": "hex16",
    "engine": ENGINES,
    "metrics": PROFILES,
    "initTime": EPOCH_MS,
    "shutdownTime": EPOCH_MS,
    "shutdownReason": TEXT,
    "lifetimeMs": DURATION_MS,
    "idleMs": DURATION_MS,
}
OPTIONAL = {
    "invocations": COUNT,
    "timeToFirstInvokeMs": DURATION_MS,
    "firstInvoke": FIRST_INVOKE_CLASSES,
    "initDurationMs": DURATION_MS,
    "initStatus": TEXT,
    "initErrorType": TEXT,
    "initPhase": TEXT,
    "restoreDurationMs": DURATION_MS,
    "runtimeVersion": TEXT,
    "availabilityZoneId": TEXT,
    "maxConcurrentInvocations": COUNT,
}
# The bash engine: its own INVOKE counts, no Telemetry API.
BASH_SUBSET = (*REQUIRED, "invocations", "timeToFirstInvokeMs", "firstInvoke")
_HEX16 = re.compile(r"[0-9a-f]{16}")


def test_field_names_and_sets_are_the_published_ones() -> None:
    """Every key, the required and optional tuples (in order) and the bash subset."""
    assert environment_record.MARKER_KEY == MARKER_KEY
    assert environment_record.VERSION == VERSION
    assert tuple(REQUIRED) == environment_record.REQUIRED_FIELDS
    assert tuple(OPTIONAL) == environment_record.OPTIONAL_FIELDS
    assert environment_record.BASH_FIELDS == BASH_SUBSET
    names = {
        name: getattr(environment_record, name)
        for name in dir(environment_record)
        if name.isupper() and isinstance(getattr(environment_record, name), str)
    }
    values = ("ENGINE_", "PROFILE_", "VERSION", "REFUSED_", "OTHER_REASON")
    fields = {v for k, v in names.items() if not k.startswith(values)}
    assert fields == set(REQUIRED) | set(OPTIONAL)


def test_value_sets_are_the_published_ones() -> None:
    """Engines, profiles (the same as the metric profiles), first-invoke classes, text bound."""
    er = environment_record
    assert (er.ENGINE_PYTHON, er.ENGINE_BASH) == ENGINES
    assert (er.PROFILE_LEAN, er.PROFILE_FULL) == PROFILES == er.PROFILES
    assert schema.METRICS_PROFILES == PROFILES
    assert schema.DEFAULT_METRICS_PROFILE == "lean"
    assert schema.FIRST_INVOKE_CLASSES == FIRST_INVOKE_CLASSES
    assert er.MAX_TEXT_LENGTH == MAX_TEXT_LENGTH


def test_the_readers_bounds_and_refusal_reasons_are_the_published_ones() -> None:
    """What a reader accepts and the reasons it gives (JSON ``records_read.refused`` keys)."""
    er = environment_record
    assert er.REFUSED_REASONS == (
        "too long",
        "too deeply nested",
        "not valid JSON",
        "unknown format version",
        "missing field",
        "wrong type",
        "out of range",
        "inconsistent",
    )
    assert er.MAX_LIFETIME_MS == 31 * 24 * 3600 * 1000
    assert er.LIFETIME_TOLERANCE_MS == 1000
    assert er.READ_SHUTDOWN_REASONS == (
        "spindown",
        "timeout",
        "failure",
        "sigterm",
        "sandboxterminated",
    )
    assert er.OTHER_REASON == "other"
    assert er.FIRST_INVOKE_CLASSES == FIRST_INVOKE_CLASSES == schema.FIRST_INVOKE_CLASSES
    assert set(schema.KNOWN_SHUTDOWN_REASONS) <= set(er.READ_SHUTDOWN_REASONS)


def _check_value(name: str, kind: object, value: object) -> None:
    if isinstance(kind, tuple):
        assert value in kind, (name, value)
    elif kind == TEXT:
        assert isinstance(value, str), name
        assert 0 < len(value) <= MAX_TEXT_LENGTH, name
    elif kind == "hex16":
        assert isinstance(value, str), name
        assert _HEX16.fullmatch(value), (name, value)
    elif kind == EPOCH_MS:
        assert type(value) is int, name
        assert value > 1_500_000_000_000, (name, value)
    elif kind == COUNT:
        assert type(value) is int, name
        assert value >= 0, (name, value)
    else:
        assert kind == DURATION_MS
        assert isinstance(value, int | float), name
        assert type(value) is not bool, name
        assert math.isfinite(value), name
        assert value >= 0, name
        assert round(value, 3) == value, (name, value)


def assert_valid_record(record: dict[str, object], engine: str) -> None:
    """``record`` follows the contract: every required field, known fields only, right types."""
    assert set(REQUIRED) <= set(record), set(REQUIRED) - set(record)
    assert set(record) <= set(REQUIRED) | set(OPTIONAL), set(record) - set(REQUIRED)
    if engine == "bash":
        assert set(record) <= set(BASH_SUBSET)
    assert record["engine"] == engine
    for name, value in record.items():
        _check_value(name, {**REQUIRED, **OPTIONAL}[name], value)
    init, shutdown, lifetime = record["initTime"], record["shutdownTime"], record["lifetimeMs"]
    assert isinstance(init, int)
    assert isinstance(shutdown, int)
    assert isinstance(lifetime, float | int)
    assert init <= shutdown
    assert abs(lifetime - (shutdown - init)) <= 1  # the two clocks agree to a millisecond
    idle = record["idleMs"]
    assert isinstance(idle, float | int)
    assert idle <= lifetime
    if "firstInvoke" in record:
        assert "invocations" in record
    assert_the_reader_counts(record)


def assert_the_reader_counts(record: dict[str, object]) -> None:
    """The reader's validator takes the record whole: the extension never writes one it refuses,
    nor a field it drops (only an unknown shutdown reason is read as ``other``)."""
    checked, why = environment_record.check_record(record)
    assert why is None, (why, record)
    reason = record["shutdownReason"]
    assert isinstance(reason, str)
    assert checked == {**record, "shutdownReason": environment_record.read_shutdown_reason(reason)}


def assert_one_line(line: str) -> dict[str, object]:
    """``line`` is one line of ASCII holding one JSON object; that object."""
    assert line.endswith("\n")
    assert "\n" not in line[:-1]
    assert "\r" not in line
    assert line.isascii()
    document = json.loads(line)
    assert isinstance(document, dict)
    return document


ENVIRONMENT = Environment("orders", "7", "provisioned-concurrency")
INIT_AT = 1_800_000_000.25
FACTS = ShutdownFacts("spindown", 1_800_000_360.5, 360.25, 12.5, 4, 0.75)


def test_python_record_of_a_full_life() -> None:
    """The builder's record for an invoked environment, field by field."""
    record = build_environment_record(
        ENVIRONMENT,
        FACTS,
        environment_id="0123456789abcdef",
        profile="lean",
        init_time=INIT_AT,
        first_invoke="prompt",
    )
    assert record == {
        "concurrencyObserver": "environment/1",
        "functionName": "orders",
        "functionVersion": "7",
        "initType": "provisioned-concurrency",
        "environmentId": "0123456789abcdef",
        "engine": "python",
        "metrics": "lean",
        "initTime": 1_800_000_000_250,
        "shutdownTime": 1_800_000_360_500,
        "shutdownReason": "spindown",
        "lifetimeMs": 360250.0,
        "idleMs": 12500.0,
        "invocations": 4,
        "timeToFirstInvokeMs": 750.0,
        "firstInvoke": "prompt",
    }
    assert_valid_record(assert_one_line(environment_line(record)), "python")


def test_python_record_of_a_shutdown_only_life() -> None:
    """INVOKE not counted: no invocations, no first invoke, and still every required field."""
    facts = ShutdownFacts("sigterm", 1_800_000_002.0, 1.75, 1.75, None, None)
    record = build_environment_record(
        ENVIRONMENT,
        facts,
        environment_id="fedcba9876543210",
        profile="full",
        init_time=1_800_000_000.25,
        first_invoke=None,
    )
    assert set(record) == set(REQUIRED)
    assert_valid_record(record, "python")


def test_platform_facts_are_merged_only_into_their_fields() -> None:
    """The Telemetry seam: known fields kept (bounded), own fields and odd values never taken."""
    platform = {
        "initDurationMs": 812.3456,
        "initStatus": "error" + "x" * 1000,
        "runtimeVersion": "python:3.13.v9",
        "maxConcurrentInvocations": 12,
        "restoreDurationMs": math.nan,  # not a number a record can carry
        "initPhase": True,  # not text
        "invocations": 99,  # the extension's own count wins
        "shutdownReason": "forged",
        "somethingElse": "ignored",
    }
    # Every optional field, but never over one the extension filled (the invocation fields come
    # from the Telemetry API only where INVOKE is not counted: Lambda Managed Instances).
    assert set(PLATFORM_FIELDS) == set(OPTIONAL)
    record = build_environment_record(
        ENVIRONMENT,
        FACTS,
        environment_id="0123456789abcdef",
        profile="lean",
        init_time=INIT_AT,
        first_invoke="prompt",
        platform=platform,
    )
    assert record["initDurationMs"] == 812.346
    assert "initStatus" not in record  # not a status the platform reports: the reader drops it
    assert (record["runtimeVersion"], record["maxConcurrentInvocations"]) == ("python:3.13.v9", 12)
    assert "restoreDurationMs" not in record
    assert "initPhase" not in record
    assert (record["invocations"], record["shutdownReason"]) == (4, "spindown")
    assert "somethingElse" not in record
    assert_valid_record(record, "python")


def test_platform_counts_invocations_where_invoke_is_not_counted() -> None:
    """SHUTDOWN only (Lambda Managed Instances): the Telemetry API's invocation fields are taken."""
    facts = ShutdownFacts("spindown", 1_800_000_002.0, 1.75, 1.75, None, None)
    platform = {
        "invocations": 14,
        "timeToFirstInvokeMs": 38.5,
        "firstInvoke": "prompt",
        "maxConcurrentInvocations": 4,
    }
    record = build_environment_record(
        ENVIRONMENT,
        facts,
        environment_id="fedcba9876543210",
        profile="lean",
        init_time=1_800_000_000.25,
        first_invoke=None,
        platform=platform,
    )
    assert {name: record[name] for name in platform} == platform
    assert_valid_record(record, "python")


def test_idle_time_from_the_platform_only_where_invoke_is_not_counted() -> None:
    """LMI: idleMs from the last invocation's end (capped by the lifetime); counted: the own one."""
    shutdown_only = ShutdownFacts("spindown", 1_800_000_002.0, 1.75, 1.75, None, None)
    counted = ShutdownFacts("spindown", 1_800_000_002.0, 1.75, 0.25, 3, 0.5)

    def idle_ms(facts: ShutdownFacts, platform_idle: object) -> object:
        return build_environment_record(
            ENVIRONMENT,
            facts,
            environment_id="fedcba9876543210",
            profile="lean",
            init_time=1_800_000_000.25,
            first_invoke=None,
            platform={"idleMs": platform_idle},
        )["idleMs"]

    assert idle_ms(shutdown_only, 412.5) == 412.5
    assert idle_ms(shutdown_only, 9_000.0) == 1750.0  # never more than the lifetime
    assert idle_ms(shutdown_only, "soon") == 1750.0  # not a number: the lifecycle's, from init
    assert idle_ms(counted, 412.5) == 250.0  # INVOKE counted: the extension's own


def test_hostile_names_stay_one_bounded_ascii_line() -> None:
    """Newlines, quotes, non-ASCII and a huge name: one ASCII line, the name cut to the bound."""
    name = 'a"b\\c\nd\u2028é' + "z" * 5000
    record = build_environment_record(
        Environment(name, "v\r\n1", "on-demand"),
        FACTS,
        environment_id="0123456789abcdef",
        profile="lean",
        init_time=INIT_AT,
        first_invoke=None,
    )
    line = environment_line(record)
    decoded = assert_one_line(line)
    assert decoded["functionName"] == name[:MAX_TEXT_LENGTH]
    assert decoded["functionVersion"] == "v\r\n1"
    assert len(line) < 2 * MAX_TEXT_LENGTH + 600  # bounded whatever the name
    assert_valid_record(decoded, "python")


# -- the bash fallback's lines -------------------------------------------------------------------


def run_fallback(env: dict[str, str]) -> tuple[str, str]:
    """The fallback (sourced from the sources, as the layer ships it) to one SHUTDOWN: stdout,
    stderr."""
    with FakeExtensionsApi([shutdown_event("Spin Down!")]).running() as api:
        environ = {
            "PATH": "/nonexistent",
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "AWS_LAMBDA_FUNCTION_NAME": "orders",
            "AWS_LAMBDA_FUNCTION_VERSION": "3",
            **env,
        }
        process = run_to_end([BASH, str(SOURCES / "fallback.sh"), "concurrency-observer"], environ)
    assert process.returncode == 0, process.stderr
    return process.stdout, process.stderr


def test_bash_lean_default_lines_and_record() -> None:
    """Default: EnvironmentDelta +1, the record, EnvironmentDelta -1; each as the Python side."""
    started = time.time()
    stdout, stderr = run_fallback({"AWS_LAMBDA_INITIALIZATION_TYPE": "Provisioned-Concurrency"})
    finished = time.time()
    init, record, shutdown = json_lines(stdout)
    for line in stdout.splitlines():
        assert_one_line(line + "\n")
    assert_valid_record(record, "bash")
    # Registered for INVOKE and never invoked: no time to first invoke, the class is "never".
    assert set(record) == set(BASH_SUBSET) - {"timeToFirstInvokeMs"}
    assert (record["invocations"], record["firstInvoke"]) == (0, "never")
    assert record["metrics"] == "lean"
    assert (record["functionName"], record["functionVersion"]) == ("orders", "3")
    assert (record["initType"], record["shutdownReason"]) == (
        "provisioned-concurrency",
        "spin-down",
    )
    assert record["idleMs"] == record["lifetimeMs"]  # never invoked: idle since init
    init_ms, shutdown_ms = record["initTime"], record["shutdownTime"]
    assert isinstance(init_ms, int)
    assert isinstance(shutdown_ms, int)
    assert started * 1000 - 1 <= init_ms <= shutdown_ms <= finished * 1000 + 1
    environment = Environment("orders", "3", "provisioned-concurrency")
    for document, kind, stamp in ((init, "init", init_ms), (shutdown, "shutdown", shutdown_ms)):
        assert_valid_emf(document)
        expected = build_delta_record(kind, environment, stamp / 1000)
        assert document == emf_document(expected, schema.DEFAULT_NAMESPACE)
    assert "WARNING" not in stderr


def test_bash_shutdown_only_writes_the_required_fields() -> None:
    """CONCURRENCY_OBSERVER_EVENTS=SHUTDOWN: no INVOKE counted, so no invocation field at all."""
    stdout, _ = run_fallback({"CONCURRENCY_OBSERVER_EVENTS": " shutdown "})
    (record,) = [d for d in json_lines(stdout) if MARKER_KEY in d]
    assert_valid_record(record, "bash")
    assert set(record) == set(REQUIRED)


def test_bash_full_profile_and_an_invalid_profile() -> None:
    """full: today's lines and a record saying full; a typo: one warning, lean."""
    stdout, _ = run_fallback({"CONCURRENCY_OBSERVER_METRICS": " FULL "})
    init, record, shutdown = json_lines(stdout)
    assert (init[schema.ENVIRONMENT_INIT], shutdown[schema.ENVIRONMENT_SHUTDOWN]) == (1, 1)
    assert record["metrics"] == "full"
    assert_valid_record(record, "bash")
    stdout, stderr = run_fallback({"CONCURRENCY_OBSERVER_METRICS": "fat"})
    init, record, shutdown = json_lines(stdout)
    assert (init[schema.ENVIRONMENT_DELTA], shutdown[schema.ENVIRONMENT_DELTA]) == (1, -1)
    assert record["metrics"] == "lean"
    assert stderr.count("CONCURRENCY_OBSERVER_METRICS is not one of lean, full") == 1


def test_bash_hostile_names_stay_one_bounded_line() -> None:
    """A long multi-byte name with quotes and a newline: one line, valid UTF-8, within the bound."""
    name = 'é"\\\n' + "é" * 300
    stdout, _ = run_fallback({"AWS_LAMBDA_FUNCTION_NAME": name})
    records = [d for d in json_lines(stdout) if MARKER_KEY in d]
    (record,) = records
    assert_valid_record(record, "bash")
    function_name = record["functionName"]
    assert isinstance(function_name, str)
    assert function_name == name[:MAX_TEXT_LENGTH]  # characters, as the Python engine cuts


@pytest.mark.parametrize("source", ["proc", "srandom"])
def test_bash_environment_ids_are_random_hex(source: str) -> None:
    """The kernel's uuid (or $SRANDOM without it): 16 hex digits, never the same twice."""
    prelude = 'source "$1"; '
    if source == "srandom":  # no /proc uuid: $SRANDOM (bash 5.1+) or the clock-and-pid fallback
        prelude += "read() { return 1; }; "
    script = prelude + "now=$(( $(printf '%(%s)T' -1) * 1000 )); "
    script += 'for i in 1 2 3 4 5; do new_environment_id; echo "$environment_id"; done'
    output = run_to_end([BASH, "-c", script, "bash", str(SOURCES / "fallback.sh")], {})
    ids = output.stdout.split()
    assert len(ids) == 5, output.stdout + output.stderr
    assert len(set(ids)) == 5, ids
    assert all(_HEX16.fullmatch(i) for i in ids), ids


def test_both_engines_pass_one_schema_for_the_same_life() -> None:
    """A bash record and a Python record of the same facts carry the same required values."""
    stdout, _ = run_fallback({})
    (bash_record,) = [d for d in json_lines(stdout) if MARKER_KEY in d]
    lifetime = bash_record["lifetimeMs"]
    init_ms, shutdown_ms = bash_record["initTime"], bash_record["shutdownTime"]
    assert isinstance(lifetime, int)
    assert isinstance(init_ms, int)
    assert isinstance(shutdown_ms, int)
    python_record = build_environment_record(
        Environment("orders", "3", "on-demand"),
        ShutdownFacts("spin-down", shutdown_ms / 1000, lifetime / 1000, lifetime / 1000, 0, None),
        environment_id=str(bash_record["environmentId"]),
        profile="lean",
        init_time=init_ms / 1000,
        first_invoke="never",
    )
    assert_valid_record(python_record, "python")
    assert {k: v for k, v in python_record.items() if k != "engine"} == {
        k: v for k, v in bash_record.items() if k != "engine"
    }


def test_the_contract_module_is_shipped_in_the_layer(tmp_path: Path) -> None:
    """The layer carries environment_record.py beside schema.py (the extension imports it)."""
    from concurrency_observer.layer import build_layer, extract_layer

    root = extract_layer(build_layer(tmp_path / "layer.zip", bytecode=False).path, tmp_path / "o")
    assert list(root.rglob("environment_record.py"))
    assert list(root.rglob("environment_line.py"))


# -- one rule for cutting values, the same in both engines ---------------------------------------

# Values the environment may hold, as bytes: multi-byte characters across the cut, bytes of no
# well-formed UTF-8 (a lone lead, a stray continuation run after ASCII, overlongs, a surrogate,
# past U+10FFFF), whitespace around the cut, and lengths on either side of the bound.
HOSTILE_VALUES: list[bytes] = [
    b"a" * 255 + "é".encode() * 3,
    "é".encode() * 300,
    "€".encode() * 100 + "😀".encode() * 200,
    b"a" + b"\x80" * 600,
    b"\xff\xfe" * 200,
    b"x" * 254 + b"\xe2\x82" + b"y" * 10,
    b"\xc0\xaf\xe0\x80\xaf\xed\xa0\x80\xf4\x90\x80\x80" * 40,
    b"\xf0\x9f\x98" * 150,
    b"z" * 255 + b" tail",
    b" " * 300 + b"after",
    "ü".encode() * 128 + b"\x00",
    b"ok\xe2\x82\xac" + "\u2028".encode() * 300,
]


def python_fields(variables: dict[str, bytes]) -> dict[str, object]:
    """The Python engine's record for ``variables`` (decoded as os.environ decodes them)."""
    environ = {name: os.fsdecode(value) for name, value in variables.items()}
    config, _ = Config.from_environ({"CONCURRENCY_OBSERVER_SINK": "emf", **environ})
    record = build_environment_record(
        Environment(config.function_name, config.function_version, config.init_type),
        FACTS,
        environment_id="0123456789abcdef",
        profile="lean",
        init_time=INIT_AT,
        first_invoke=None,
    )
    return json.loads(environment_line(record))  # type: ignore[no-any-return]


def bash_fields(variables: dict[str, bytes]) -> dict[str, object]:
    """The fallback's record for ``variables``, its line read as Python reads bytes of no UTF-8."""
    with FakeExtensionsApi([shutdown_event()]).running() as api:
        environ = {
            b"PATH": b"/nonexistent",
            b"AWS_LAMBDA_RUNTIME_API": api.address.encode(),
            **{name.encode(): value for name, value in variables.items()},
        }
        process = subprocess.run(
            [BASH, str(SOURCES / "fallback.sh"), "concurrency-observer"],
            env=environ,
            capture_output=True,
            check=False,
            timeout=30,
        )
    assert process.returncode == 0, process.stderr
    lines = process.stdout.decode("utf-8", "surrogateescape").split("\n")
    (record,) = [r for r in map(json.loads, filter(None, lines)) if MARKER_KEY in r]
    return record  # type: ignore[no-any-return]


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=range(len(HOSTILE_VALUES)))
def test_both_engines_cut_hostile_values_alike(value: bytes) -> None:
    """The same hostile bytes as name, version and init type: both engines keep the same text."""
    variables = {
        "AWS_LAMBDA_FUNCTION_NAME": value,
        "AWS_LAMBDA_FUNCTION_VERSION": value[::-1],
        "AWS_LAMBDA_INITIALIZATION_TYPE": value,
    }
    if b"\x00" in value:  # no environment holds a NUL: the value ends there
        variables = {name: v.split(b"\x00", 1)[0] for name, v in variables.items()}
    python, bash = python_fields(variables), bash_fields(variables)
    names = ("functionName", "functionVersion", "initType")
    assert {n: bash[n] for n in names} == {n: python[n] for n in names}
    for name, variable in zip(names[:2], variables, strict=False):
        text = python[name]
        assert isinstance(text, str)
        assert len(text) <= MAX_TEXT_LENGTH
        # Never a sequence split: what is kept is a run of the value's own bytes.
        assert text in ("unknown", "$LATEST") or os.fsencode(text) in variables[variable]
