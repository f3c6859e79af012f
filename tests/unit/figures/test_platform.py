"""The platform's account aggregated over records: every figure worked out by hand."""

from __future__ import annotations

from typing import Any

from concurrency_observer.figures.platform import (
    MANAGED_INSTANCES,
    NEVER_INVOKED,
    PROACTIVE,
    PROVISIONED,
    SNAPSTART,
    UNCLASSIFIED,
    Quantiles,
    cold_starts_section,
    platform_figures,
    platform_section,
    why_not_waited_for,
)


def record(init_type: str = "on-demand", **fields: Any) -> dict[str, Any]:
    """A record with the fields a test cares about (the rest is not read here)."""
    return {"concurrencyObserver": "environment/1", "initType": init_type, **fields}


RECORDS = [
    # Four on-demand inits invoked promptly (felt), three with an init duration.
    record(
        firstInvoke="prompt",
        initDurationMs=100.0,
        initStatus="success",
        availabilityZoneId="use1-az1",
        runtimeVersion="python:3.12.v40",
        environmentId="a",
    ),
    record(
        firstInvoke="prompt",
        initDurationMs=300.0,
        initStatus="success",
        availabilityZoneId="use1-az1",
        runtimeVersion="python:3.12.v40",
        environmentId="b",
    ),
    record(
        firstInvoke="prompt",
        initDurationMs=200.0,
        initStatus="success",
        availabilityZoneId="use1-az2",
        runtimeVersion="python:3.12.v41",
        environmentId="c",
    ),
    record(firstInvoke="prompt", environmentId="d"),  # no Telemetry API
    # Nobody waited for these.
    record(firstInvoke="delayed", initDurationMs=900.0, initStatus="success", environmentId="e"),
    record(
        "provisioned-concurrency",
        firstInvoke="never",
        initDurationMs=1000.0,
        initStatus="success",
        environmentId="f",
    ),
    record(
        "provisioned-concurrency",
        firstInvoke="prompt",
        initDurationMs=800.0,
        initStatus="success",
        environmentId="g",
    ),
    record(
        firstInvoke="never",
        initDurationMs=50.0,
        initStatus="error",
        initErrorType="Runtime.ExitError",
        initPhase="init",
        environmentId="h",
    ),
    record(
        firstInvoke="never",
        initDurationMs=60.0,
        initStatus="error",
        initErrorType="Runtime.ExitError",
        initPhase="invoke",
        environmentId="i",
    ),
    record(
        firstInvoke="never",
        initDurationMs=3000.0,
        initStatus="timeout",
        initPhase="invoke",
        environmentId="j",
    ),
    record(environmentId="k"),  # SHUTDOWN only: no class
    record("snap-start", firstInvoke="prompt", restoreDurationMs=250.0, environmentId="l"),
    record("snap-start", firstInvoke="prompt", restoreDurationMs=150.5, environmentId="m"),
    record(
        "lambda-managed-instances",
        invocations=14,
        maxConcurrentInvocations=4,
        firstInvoke="prompt",
        initDurationMs=70.0,
        initStatus="success",
        availabilityZoneId="use1-az2",
        environmentId="n",
    ),
    record("lambda-managed-instances", environmentId="o"),  # telemetry off: nothing known
]


def test_why_not_waited_for() -> None:
    """The init type first (provisioned, LMI, SnapStart), then the on-demand class."""
    assert why_not_waited_for(record(firstInvoke="prompt")) is None
    assert why_not_waited_for({"firstInvoke": "prompt"}) is None  # no init type: on-demand
    assert why_not_waited_for(record(firstInvoke="delayed")) == PROACTIVE
    assert why_not_waited_for(record(firstInvoke="never")) == NEVER_INVOKED
    assert why_not_waited_for(record()) == UNCLASSIFIED
    assert why_not_waited_for(record("provisioned-concurrency", firstInvoke="prompt")) == (
        PROVISIONED
    )
    assert why_not_waited_for(record("lambda-managed-instances")) == MANAGED_INSTANCES
    assert why_not_waited_for(record("snap-start", firstInvoke="prompt")) == SNAPSTART


def test_cold_starts_felt_and_share() -> None:
    """4 felt cold starts in 400 invocations (1%); durations 100, 200, 300 by nearest rank."""
    classified = [r for r in RECORDS if why_not_waited_for(r) != UNCLASSIFIED]
    figures = platform_figures(classified, invocations=400)
    assert cold_starts_section(figures) == {
        "felt": 4,
        "environments": 14,
        "classified": 14,
        "invocations": 400,
        "share": 0.01,
        "share_invocations": 400,
        "share_over": "AWS/Lambda Invocations",
        "init_duration_ms": {"count": 3, "p50": 200.0, "p90": 300.0, "p99": 300.0, "max": 300.0},
        "not_waited_for": {
            "proactive": 1,
            "provisioned": 2,
            "never-invoked": 3,
            "managed-instances": 2,
            "snapstart": 2,
        },
    }


def test_an_unknown_class_is_in_neither_count_and_the_share_is_over_the_known() -> None:
    """One environment of 15 without a class: felt over the 14, share unknown as some of those
    14 records counted no invocations (AWS/Lambda's 400 include the unclassified one's)."""
    cold = platform_figures(RECORDS, invocations=400).cold_starts
    assert (cold.felt, cold.classified, cold.environments, cold.unclassified) == (4, 14, 15, 1)
    assert (cold.invocations, cold.share) == (400, None)
    assert cold.not_waited_for["unclassified"] == 1


def test_the_share_over_the_classified_uses_their_own_invocation_counts() -> None:
    """Two classified on-demand environments (one felt) served 8; one bash record: 1 of 8."""
    records = [
        record(firstInvoke="prompt", invocations=5, environmentId="a"),
        record(firstInvoke="delayed", invocations=3, environmentId="b"),
        record(engine="bash", environmentId="c"),  # no class, no count
    ]
    section = cold_starts_section(platform_figures(records, invocations=20))
    assert (section["felt"], section["classified"], section["environments"]) == (1, 2, 3)
    assert (section["share"], section["share_invocations"]) == (0.125, 8.0)
    assert section["share_over"] == "the classified environments' records"
    assert section["invocations"] == 20  # AWS/Lambda's, every environment's


def test_no_class_known_is_unknown_never_zero() -> None:
    """Only bash records: felt and share are null, not 0 (simulate --runtime bash, issue 28)."""
    records = [record(engine="bash", environmentId=e) for e in "abc"]
    section = cold_starts_section(platform_figures(records, invocations=20))
    assert (section["felt"], section["share"], section["classified"]) == (None, None, 0)


def test_no_invocations_no_share() -> None:
    """Without AWS/Lambda Invocations (or zero of them) the share is unknown, not zero."""
    assert platform_figures(RECORDS).cold_starts.share is None
    assert platform_figures(RECORDS, invocations=0).cold_starts.share is None


def test_platform_section() -> None:
    """Per init type, failures, restores, LMI environments, zones and runtimes."""
    section = platform_section(platform_figures(RECORDS, invocations=400))
    assert section["environments"] == 15
    assert section["with_telemetry"] == 10
    by_type = section["init_duration_ms_by_init_type"]
    # on-demand: 50, 60, 100, 200, 300, 900, 3000 -> p50 = 4th = 200, p90 = ceil(6.3) = 7th.
    assert by_type["on-demand"] == {
        "count": 7,
        "p50": 200.0,
        "p90": 3000.0,
        "p99": 3000.0,
        "max": 3000.0,
    }
    assert by_type["provisioned-concurrency"] == {
        "count": 2,
        "p50": 800.0,
        "p90": 1000.0,
        "p99": 1000.0,
        "max": 1000.0,
    }
    assert by_type["lambda-managed-instances"]["count"] == 1
    assert list(by_type) == ["lambda-managed-instances", "on-demand", "provisioned-concurrency"]
    assert section["failed_inits"] == {
        "total": 3,
        "by_error_type": {"Runtime.ExitError": 2, "timeout": 1},
        "by_phase": {"invoke": 2, "init": 1},
    }
    assert section["restore_duration_ms"] == {
        "count": 2,
        "p50": 150.5,
        "p90": 250.0,
        "p99": 250.0,
        "max": 250.0,
    }
    assert section["managed_instances"] == [
        {
            "environment_id": "n",
            "invocations": 14,
            "max_concurrent_invocations": 4,
            "availability_zone_id": "use1-az2",
        },
        {
            "environment_id": "o",
            "invocations": None,
            "max_concurrent_invocations": None,
            "availability_zone_id": None,
        },
    ]
    assert section["environments_by_availability_zone"] == {
        "unknown": 11,
        "use1-az1": 2,
        "use1-az2": 2,
    }
    assert section["runtime_versions"] == {"python:3.12.v40": 2, "python:3.12.v41": 1}


def test_nothing_known() -> None:
    """No record: every figure empty, no quantile, nothing invented."""
    figures = platform_figures([], invocations=10)
    assert cold_starts_section(figures) == {
        "felt": None,
        "environments": 0,
        "classified": 0,
        "invocations": 10,
        "share": None,
        "share_invocations": None,
        "share_over": None,
        "init_duration_ms": None,
        "not_waited_for": {},
    }
    section = platform_section(figures)
    assert section["restore_duration_ms"] is None
    assert section["failed_inits"] == {"total": 0, "by_error_type": {}, "by_phase": {}}
    assert Quantiles.of([]) is None


def test_odd_values_are_left_out() -> None:
    """A duration that is not a number and a status that is not text count for nothing."""
    odd = [
        record(firstInvoke="prompt", initDurationMs="fast", initStatus=3, restoreDurationMs=True)
    ]
    figures = platform_figures(odd)
    assert (figures.cold_starts.felt, figures.cold_starts.init_duration) == (1, None)
    assert (figures.with_telemetry, figures.failed_inits, figures.restore_duration) == (0, 0, None)
