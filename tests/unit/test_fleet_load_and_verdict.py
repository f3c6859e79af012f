"""The simulation's load schedule, its runner, the verdict and the report built from EMF lines."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from concurrency_observer import schema
from concurrency_observer.aws.report import ReportRequest, build_report, resolve_window
from concurrency_observer.figures.record_scan import RecordScan
from concurrency_observer.local.emf_report import fetch_from_emf
from concurrency_observer.local.fleet import FleetConfig, FleetSnapshot
from concurrency_observer.local.load import LoadProfile, arrival_schedule, burst_times, run_load
from concurrency_observer.local.outcome import emf_streams, recorded_from_report
from concurrency_observer.local.simulation import (
    RECORDS,
    Recorded,
    SimulationSettings,
    simulation_env,
    verdict_checks,
)

PC = schema.INIT_PROVISIONED
OD = schema.INIT_ON_DEMAND


def test_schedule_is_reproducible_from_its_seed() -> None:
    """The same profile gives the same arrivals; another seed gives others."""
    profile = LoadProfile(rate=5, duration=20, seed=7)
    assert arrival_schedule(profile) == arrival_schedule(profile)
    assert arrival_schedule(profile) != arrival_schedule(LoadProfile(rate=5, duration=20, seed=8))


def test_schedule_has_its_bursts_and_a_quiet_end() -> None:
    """Each burst puts burst_size arrivals within its spread; none in the last 30% of the run."""
    profile = LoadProfile(rate=0, duration=10, seed=1, bursts=2, burst_size=5, burst_spread=0.1)
    arrivals = arrival_schedule(profile)
    assert len(arrivals) == 10
    for start in burst_times(profile):
        assert sum(start <= a <= start + 0.1 for a in arrivals) == 5
    assert max(arrivals) < 0.7 * profile.duration
    assert arrivals == sorted(arrivals)


def test_steady_rate_is_about_right() -> None:
    """A Poisson process at 20/s over 50 s gives close to 1000 arrivals, all inside the run."""
    arrivals = arrival_schedule(LoadProfile(rate=20, duration=50, seed=3, bursts=0))
    assert 900 < len(arrivals) < 1100
    assert arrivals[0] > 0
    assert arrivals[-1] < 50


def test_run_load_calls_once_per_arrival_and_stops_early() -> None:
    """Every scheduled arrival is sent; with stop set, none are."""
    calls: list[int] = []

    def invoke() -> int:
        calls.append(1)
        return len(calls)

    results = run_load(invoke, [0.0, 0.01, 0.02], workers=2)
    assert len(results) == 3
    assert len(calls) == 3
    stop = threading.Event()
    stop.set()
    assert run_load(lambda: 1, [0.0, 0.5], workers=1, stop=stop) == []


def snapshot(
    started: dict[str, int], stopped: dict[str, int], invocations: dict[str, int]
) -> FleetSnapshot:
    """A ground truth with the given counts and nothing else."""
    return FleetSnapshot(
        started=started,
        stopped=stopped,
        invocations=invocations,
        live={},
        starting=0,
        busy=0,
        warmups=0,
        served=0,
        throttled=0,
        failed=0,
        idle_shutdowns=0,
        forced_shutdowns=0,
        peak_live=0,
    )


def test_verdict_matches_only_when_every_figure_is_equal() -> None:
    """Equal per type and in total: every check matches; one inflated type total: that one fails."""
    truth = snapshot({PC: 2, OD: 3}, {PC: 2, OD: 3}, {PC: 10, OD: 4})
    recorded: Recorded = {
        (schema.ENVIRONMENT_INIT, None): 5.0,
        (schema.ENVIRONMENT_INIT, PC): 2.0,
        (schema.ENVIRONMENT_INIT, OD): 3.0,
        (schema.ENVIRONMENT_SHUTDOWN, None): 5.0,
        (schema.ENVIRONMENT_SHUTDOWN, PC): 2.0,
        (schema.ENVIRONMENT_SHUTDOWN, OD): 3.0,
        (schema.ENVIRONMENT_INVOCATIONS, None): 14.0,
        (schema.ENVIRONMENT_INVOCATIONS, PC): 10.0,
        (schema.ENVIRONMENT_INVOCATIONS, OD): 4.0,
        (RECORDS, None): 5.0,
        (RECORDS, PC): 2.0,
        (RECORDS, OD): 3.0,
    }
    checks = verdict_checks(truth, recorded)
    assert len(checks) == 12 + 6  # and the three FirstInvoke classes of each init type (all 0)
    assert all(check.matches for check in checks)
    wrong = verdict_checks(truth, {**recorded, (schema.ENVIRONMENT_INIT, OD): 4.0})
    assert [(c.metric, c.init_type) for c in wrong if not c.matches] == [
        (schema.ENVIRONMENT_INIT, OD)
    ]


def test_verdict_flags_an_init_type_the_control_plane_never_started() -> None:
    """A recorded snap-start init the truth does not have is a failing check of its own."""
    truth = snapshot({OD: 1}, {OD: 1}, {OD: 1})
    recorded: Recorded = {(schema.ENVIRONMENT_INIT, schema.INIT_SNAP_START): 1.0}
    failing = [c for c in verdict_checks(truth, recorded) if not c.matches]
    assert (schema.ENVIRONMENT_INIT, schema.INIT_SNAP_START) in [
        (c.metric, c.init_type) for c in failing
    ]


def emf_line(
    function: str, init_type: str, metrics: dict[str, float], at: datetime
) -> dict[str, object]:
    """An EMF document shaped like the extension's (three base dimension sets)."""
    return {
        "_aws": {
            "Timestamp": int(at.timestamp() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": "Test",
                    "Dimensions": [list(s) for s in schema.BASE_DIMENSION_SETS],
                    "Metrics": [{"Name": n, "Unit": "Count"} for n in metrics],
                }
            ],
        },
        schema.FUNCTION_NAME: function,
        schema.FUNCTION_VERSION: "$LATEST",
        schema.INIT_TYPE: init_type,
        **metrics,
    }


def lean_line(function: str, init_type: str, delta: float, at: datetime) -> dict[str, object]:
    """An EMF document of the lean profile: EnvironmentDelta under [FunctionName, InitType]."""
    return {
        "_aws": {
            "Timestamp": int(at.timestamp() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": "Test",
                    "Dimensions": [list(schema.LEAN_DIMENSION_SET)],
                    "Metrics": [{"Name": schema.ENVIRONMENT_DELTA, "Unit": "Count"}],
                }
            ],
        },
        schema.FUNCTION_NAME: function,
        schema.INIT_TYPE: init_type,
        schema.ENVIRONMENT_DELTA: delta,
    }


def test_emf_lines_give_the_same_report_under_either_profile() -> None:
    """Inits per init type from the EMF documents' exact sets: EnvironmentInit (full) and
    EnvironmentDelta (lean, (SampleCount + Sum) / 2) summed, other functions left out."""
    at = datetime(2026, 11, 27, 12, 0, 30, tzinfo=timezone.utc)
    documents = [
        emf_line("f", PC, {schema.ENVIRONMENT_INIT: 1}, at),
        emf_line("f", OD, {schema.ENVIRONMENT_INIT: 1}, at),
        emf_line("f", OD, {schema.ENVIRONMENT_SHUTDOWN: 1}, at),
        emf_line("other", OD, {schema.ENVIRONMENT_INIT: 1}, at),
        lean_line("f", OD, 1, at),
        lean_line("f", OD, 1, at),
        lean_line("f", OD, -1, at),
    ]
    window = resolve_window(now=at, start=at - timedelta(minutes=1), end=at + timedelta(minutes=1))
    request = ReportRequest(function_name="f", window=window, namespace="Test")
    fetched = fetch_from_emf(documents, request)
    assert fetched.init_types == (OD, PC)
    recorded = recorded_from_report(build_report(request, fetched), None)
    assert recorded[(schema.ENVIRONMENT_INIT, None)] == 4  # 2 full + 2 lean
    assert recorded[(schema.ENVIRONMENT_INIT, OD)] == 3
    assert recorded[(schema.ENVIRONMENT_SHUTDOWN, OD)] == 2
    # EnvironmentInit: [F], [F, V], [F, PC], [F, OD]; EnvironmentShutdown: [F], [F, V], [F, OD];
    # EnvironmentDelta: [F, OD]
    assert emf_streams(documents, "Test", "f") == 8


@pytest.mark.parametrize(("rate", "duration"), [(-1.0, 1.0), (1.0, 0.0)])
def test_profile_rejects_bad_values(rate: float, duration: float) -> None:
    """A negative rate or an empty duration is refused."""
    with pytest.raises(ValueError, match="rate"):
        LoadProfile(rate=rate, duration=duration)


def test_classes_and_invocations_come_from_the_records() -> None:
    """The verdict's FirstInvoke classes, invocations and record counts per init type."""
    at = datetime(2026, 11, 27, 12, 0, 30, tzinfo=timezone.utc)
    window = resolve_window(now=at, start=at - timedelta(minutes=1), end=at + timedelta(minutes=1))
    request = ReportRequest(function_name="f", window=window, namespace="Test")
    shutdown_ms = int(at.timestamp() * 1000)

    def record(key: str, init_type: str, usage: str, invocations: int) -> dict[str, object]:
        return {
            "concurrencyObserver": "environment/1",
            "functionName": "f",
            "functionVersion": "$LATEST",
            "initType": init_type,
            "environmentId": key * 16,
            "engine": "python",
            "metrics": "lean",
            "initTime": shutdown_ms - 5000,
            "shutdownTime": shutdown_ms,
            "shutdownReason": "spindown",
            "lifetimeMs": 5000,
            "idleMs": 100,
            "invocations": invocations,
            "firstInvoke": usage,
        }

    scan = RecordScan(
        "/aws/lambda/f",
        (
            record("a", PC, schema.FIRST_INVOKE_NEVER, 0),
            record("b", PC, schema.FIRST_INVOKE_NEVER, 0),
            record("c", OD, schema.FIRST_INVOKE_DELAYED, 4),
        ),
    )
    documents = [lean_line("f", t, d, at) for t in (PC, PC, OD) for d in (1, -1)]
    report = build_report(request, fetch_from_emf(documents, request), scan)
    recorded = recorded_from_report(report, scan)
    assert recorded[(schema.ENVIRONMENT_SHUTDOWN, PC, schema.FIRST_INVOKE_NEVER)] == 2
    assert recorded[(schema.ENVIRONMENT_SHUTDOWN, OD, schema.FIRST_INVOKE_DELAYED)] == 1
    assert recorded[(schema.ENVIRONMENT_SHUTDOWN, OD, schema.FIRST_INVOKE_PROMPT)] == 0
    assert recorded[(schema.ENVIRONMENT_SHUTDOWN, None)] == 3
    assert recorded[(schema.ENVIRONMENT_INVOCATIONS, OD)] == 4
    assert recorded[(RECORDS, PC)] == 2


def test_the_environments_get_the_threshold_the_control_plane_uses() -> None:
    """A 2.5 s threshold in the fleet's config is CONCURRENCY_OBSERVER_PROMPT_THRESHOLD_MS=2500."""
    settings = SimulationSettings(fleet=FleetConfig(prompt_threshold=2.5), sink="emf")
    env = simulation_env(settings)
    assert env["CONCURRENCY_OBSERVER_PROMPT_THRESHOLD_MS"] == "2500"
    assert env["CONCURRENCY_OBSERVER_SINK"] == "emf"
