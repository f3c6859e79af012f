"""The platform's own account, end to end: the RIE's Managed Instances mode implements the
Telemetry API for real (schema 2025-01-29, deliveries to 127.0.0.1 for sandbox.localdomain), and
the metadata endpoint is served in every mode. The records are read from the environment's
output, as Lambda delivers stdout to the function's log group. The RIE's default mode only stubs
the Telemetry API: there the harness's emulator serves it from what the RIE reports
(``local/telemetry_emulator.py``), and the recorded init durations are held to the RIE's own
``INIT REPORT``.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from concurrency_observer import environment_record as fields
from concurrency_observer import schema
from concurrency_observer.local.environment import LambdaEnvironment
from concurrency_observer.local.environment_results import InvokeResult
from concurrency_observer.local.environment_settings import EnvironmentSettings, observer_env
from concurrency_observer.local.platform_truth import platform_truth
from tests.faults.helpers import observer_lines, unique_name
from tests.lean_metrics import environment_records

pytestmark = pytest.mark.e2e

CONCURRENCY = 4
INIT_REPORT = re.compile(r"INIT REPORT\(durationMs: ([0-9.]+)\)")


def number(field: object) -> float:
    """A record's numeric field."""
    assert isinstance(field, (int, float))
    return float(field)


@pytest.mark.parametrize("batches", [(4, 4, 4), (1, 3, 2, 4, 1)])
def test_lmi_invocations_equal_those_sent(
    rie_path: Path, layer_dir: Path, batches: tuple[int, ...]
) -> None:
    """Invocations counted from platform.start/report equal those sent; concurrency seen."""
    settings = EnvironmentSettings(
        function_name=unique_name("lmi-tel"),
        max_concurrency=CONCURRENCY,
        extra_env=observer_env(sink="emf", namespace=unique_name("LmiTel")),
    )
    results: list[InvokeResult] = []
    with (
        LambdaEnvironment(layer_dir, settings, name="lmi", rie_path=rie_path) as environment,
        ThreadPoolExecutor(CONCURRENCY) as pool,
    ):
        for size in batches:
            results += pool.map(environment.invoke, [{"sleep_ms": 300}] * size)
        environment.shutdown()
    output = environment.output
    assert [r.status for r in results] == [200] * sum(batches), output[-2000:]
    most_at_once = max(r.payload["concurrent"] for r in results)
    (record,) = environment_records(output, settings.function_name)
    assert record[fields.INVOCATIONS] == sum(batches), observer_lines(output)
    # What the runtime saw at once is what the platform's start/report intervals overlap by.
    assert record[fields.MAX_CONCURRENT_INVOCATIONS] == most_at_once
    assert record[fields.FIRST_INVOKE] == schema.FIRST_INVOKE_PROMPT
    assert 0 <= number(record[fields.TIME_TO_FIRST_INVOKE_MS]) <= number(record[fields.LIFETIME_MS])
    assert record[fields.INIT_STATUS] == "success"
    assert record[fields.INIT_PHASE] == "init"
    assert 0 < number(record[fields.INIT_DURATION_MS]) < number(record[fields.LIFETIME_MS])
    assert fields.INIT_ERROR_TYPE not in record
    assert isinstance(record[fields.AVAILABILITY_ZONE_ID], str)


def test_lmi_never_invoked(rie_path: Path, layer_dir: Path) -> None:
    """An LMI environment shut down without an invocation: 0 invocations, class never."""
    extra_env = observer_env(sink="emf", namespace=unique_name("LmiTel"))
    extra_env["CONCURRENCY_OBSERVER_LOG_LEVEL"] = "DEBUG"  # says when a delivery was read
    settings = EnvironmentSettings(
        function_name=unique_name("lmi-tel"), max_concurrency=CONCURRENCY, extra_env=extra_env
    )
    with LambdaEnvironment(layer_dir, settings, name="lmi", rie_path=rie_path) as environment:
        # The RIE's LMI mode inits at start; shut down only once the initReport is in.
        deadline = time.monotonic() + 30
        while "platform events read, init " not in environment.output:
            assert time.monotonic() < deadline, environment.output[-2000:]
            time.sleep(0.05)
        environment.shutdown()
    (record,) = environment_records(environment.output, settings.function_name)
    assert record[fields.INVOCATIONS] == 0
    assert record[fields.FIRST_INVOKE] == schema.FIRST_INVOKE_NEVER
    assert record[fields.INIT_STATUS] == "success"


@pytest.mark.parametrize("init_caching", [False, True])
def test_availability_zone_from_the_metadata_endpoint(
    rie_path: Path, layer_dir: Path, init_caching: bool
) -> None:
    """The RIE serves the metadata endpoint (with and without init caching): the zone is in the
    record, asked with the bearer token at SHUTDOWN."""
    settings = EnvironmentSettings(
        function_name=unique_name("az"),
        init_caching=init_caching,
        extra_env=observer_env(sink="emf", namespace=unique_name("Az")),
    )
    with LambdaEnvironment(layer_dir, settings, name="az", rie_path=rie_path) as environment:
        assert environment.invoke({}).status == 200
        environment.shutdown()
    (record,) = environment_records(environment.output, settings.function_name)
    zone = record[fields.AVAILABILITY_ZONE_ID]
    assert isinstance(zone, str)
    assert re.fullmatch(r"[a-z]{2,4}[0-9]-az[0-9]+", zone), zone  # e.g. use1-az1
    assert record[fields.INVOCATIONS] == 1


def registered_init_reports(output: str) -> list[float]:
    """The RIE's ``INIT REPORT`` durations of the inits our extension registered in, in order
    (the RIE also reports an init of 0.05 ms where the extension failed to launch)."""
    durations = []
    for block in output.split("INIT START(")[1:]:
        match = INIT_REPORT.search(block)
        if match and "External agent concurrency-observer" in block:
            durations.append(float(match.group(1)))
    return durations


def emulated(name: str, **extra: str) -> EnvironmentSettings:
    """The RIE's default mode with the harness's Telemetry API emulator."""
    return EnvironmentSettings(
        function_name=unique_name(name),
        emulate_telemetry=True,
        extra_env={**observer_env(sink="emf", namespace=unique_name("Emu")), **extra},
    )


def test_init_durations_equal_the_rie_init_report(rie_path: Path, layer_dir: Path) -> None:
    """Three environments: each record's initDurationMs is the RIE's INIT REPORT within 1 ms."""
    for _ in range(3):
        settings = emulated("initdur")
        with LambdaEnvironment(layer_dir, settings, name="emu", rie_path=rie_path) as environment:
            assert environment.invoke({}).status == 200
            assert environment.invoke({}).status == 200
            environment.shutdown()
        reported = environment.init_duration_ms()
        assert reported is not None
        (record,) = environment_records(environment.output, settings.function_name)
        assert abs(number(record[fields.INIT_DURATION_MS]) - reported) <= 1.0
        assert (record[fields.INIT_STATUS], record[fields.INIT_PHASE]) == ("success", "init")
        assert record[fields.INVOCATIONS] == 2  # INVOKE still counts them, not telemetry
        assert fields.MAX_CONCURRENT_INVOCATIONS not in record


def test_failed_init_recorded_as_failed(rie_path: Path, layer_dir: Path) -> None:
    """A handler raising at import: every attempt is a new init, phase invoke after the first,
    each recorded as failed with the RIE's error type and its INIT REPORT duration."""
    settings = emulated("initfail", CONCURRENCY_OBSERVER_LOCAL_INIT_ERROR="1")
    with LambdaEnvironment(layer_dir, settings, name="emu", rie_path=rie_path) as environment:
        statuses = [environment.invoke({}).status for _ in range(3)]
        environment.shutdown()
    assert statuses == [502] * 3
    output = environment.output
    records = sorted(
        environment_records(output, settings.function_name),
        key=lambda record: number(record[fields.INIT_TIME]),
    )
    reports = registered_init_reports(output)
    assert len(records) == len(reports) >= 3, observer_lines(output)
    assert {record[fields.INIT_STATUS] for record in records} == {"error"}
    assert {record[fields.INIT_ERROR_TYPE] for record in records} == {"Runtime.ExitError"}
    assert [record[fields.INIT_PHASE] for record in records] == ["init"] + ["invoke"] * (
        len(records) - 1
    )
    for record, reported in zip(records, reports, strict=True):
        assert abs(number(record[fields.INIT_DURATION_MS]) - reported) <= 1.0
        assert record[fields.INVOCATIONS] == 0


@pytest.mark.parametrize("released", [True, False])
def test_a_held_init_is_recorded_as_over_at_the_gate(
    rie_path: Path, layer_dir: Path, released: bool
) -> None:
    """A provisioned environment held at the gate, then let through or shut down still held:
    recorded successful, lasting from INIT START to the gate, not the RIE's longer INIT REPORT."""
    settings = replace(emulated("held"), init_type=schema.INIT_PROVISIONED)
    environment = LambdaEnvironment(
        layer_dir, settings, name="held", rie_path=rie_path, init_gate=True
    ).start()
    with environment:
        environment.hold_init({"warmup": True})
        assert environment.telemetry is not None
        deadline = time.monotonic() + 30
        while not any(e["type"] == "platform.initReport" for e in environment.telemetry.delivered):
            assert time.monotonic() < deadline, environment.output[-2000:]
            time.sleep(0.05)
        time.sleep(0.5)  # held a while: the RIE counts that in its init, Lambda does not
        if released:
            assert environment.release_init().status == 200
        environment.shutdown()
    output = environment.output
    (record,) = environment_records(output, settings.function_name)
    (truth,) = platform_truth([output]).init_durations_ms
    (rie_report,) = registered_init_reports(output)
    assert record[fields.INIT_STATUS] == "success", observer_lines(output)
    assert fields.INIT_ERROR_TYPE not in record
    assert abs(number(record[fields.INIT_DURATION_MS]) - truth) <= 1.0
    assert 0 < truth < rie_report - 500  # the time held is not init work
    assert platform_truth([output]).failed_inits == 0
    assert ("INIT RTDONE(status: error)" in output) is not released  # what the RIE says held
    assert record[fields.INVOCATIONS] == int(released)
