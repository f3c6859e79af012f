"""simulate's platform verdict: the RIE's INIT REPORTs against the records, by hand."""

from __future__ import annotations

from concurrency_observer.local.platform_truth import (
    PlatformTruth,
    platform_truth,
    platform_verdict,
)

REGISTERED = "x (rapid) External agent concurrency-observer (id) registered, subscribed to [...]"
OUTPUT_ONE = "\n".join(
    [
        "x (rapid) INIT START(type: on-demand, phase: init)",
        REGISTERED,
        "x (rapid) INIT RTDONE(status: error)",
        "x (rapid) INIT REPORT(durationMs: 89.931000)",
        # The RIE's own retry where the extension failed to launch: not the extension's init.
        "x (rapid) INIT START(type: on-demand, phase: invoke)",
        "x (rapid) INIT REPORT(durationMs: 0.055000)",
        "x (rapid) INIT START(type: on-demand, phase: invoke)",
        REGISTERED,
        "x (rapid) INIT RTDONE(status: success)",
        "x (rapid) INIT REPORT(durationMs: 40.5)",
    ]
)
OUTPUT_TWO = "\n".join(
    [
        "x (rapid) INIT START(type: on-demand, phase: init)",
        REGISTERED,
        "x (rapid) INIT REPORT(durationMs: 20.25)",
        # An init still running when the output was read: no report, nothing to compare.
        "x (rapid) INIT START(type: on-demand, phase: invoke)",
        REGISTERED,
    ]
)


def test_truth_counts_the_inits_the_extension_ran_in() -> None:
    """Three reported inits with the extension registered, one of them failed."""
    assert platform_truth([OUTPUT_ONE, OUTPUT_TWO]) == PlatformTruth((20.25, 40.5, 89.931), 1)


def test_records_within_a_millisecond_match() -> None:
    """Durations paired in order within 1 ms, one failed init each side: a match."""
    truth = platform_truth([OUTPUT_ONE, OUTPUT_TWO])
    records: list[dict[str, object]] = [
        {"initDurationMs": 89.9, "initStatus": "error"},
        {"initDurationMs": 40.5, "initStatus": "success"},
        {"initDurationMs": 21.2, "initStatus": "success"},
        {"invocations": 3},  # no Telemetry API: no duration, no status
    ]
    verdict = platform_verdict(truth, records)
    assert verdict.largest_gap_ms is not None
    assert abs(verdict.largest_gap_ms - 0.95) < 1e-9
    assert verdict.matches
    assert verdict.to_dict()["failed_inits"] == {"truth": 1, "recorded": 1}


def test_a_missing_or_distant_duration_is_a_mismatch() -> None:
    """One duration short, or 1.5 ms away, or a failed init not recorded: no match."""
    truth = PlatformTruth((20.0, 40.0), 1)
    short = platform_verdict(truth, [{"initDurationMs": 20.0, "initStatus": "error"}])
    assert (short.largest_gap_ms, short.matches) == (None, False)
    far = platform_verdict(
        truth,
        [{"initDurationMs": 20.0, "initStatus": "error"}, {"initDurationMs": 41.5}],
    )
    assert (far.largest_gap_ms, far.matches) == (1.5, False)
    unfailed = platform_verdict(truth, [{"initDurationMs": 20.0}, {"initDurationMs": 40.0}])
    assert (unfailed.largest_gap_ms, unfailed.matches) == (0.0, False)


HELD_THEN_SHUT_DOWN = "\n".join(
    [
        "02 Dec 2026 17:57:35,118 [INFO] (rapid) INIT START(type: on-demand, phase: init)",
        "02 Dec 2026 17:57:35,144 [INFO] (rapid) " + REGISTERED.split("(rapid) ")[1],
        "INIT HELD(at: 1796234255.175061)",
        # Shut down while held: the RIE calls the init failed, lasting until the SIGTERM.
        "02 Dec 2026 17:57:36,180 [INFO] (rapid) INIT RTDONE(status: error)",
        "02 Dec 2026 17:57:36,180 [INFO] (rapid) INIT REPORT(durationMs: 1061.746000)",
    ]
)


def test_a_held_init_lasted_until_the_gate_and_did_not_fail() -> None:
    """A held init shut down while held: 57.061 ms from INIT START to the gate, not failed."""
    assert platform_truth([HELD_THEN_SHUT_DOWN]) == PlatformTruth((57.061,), 0)
    assert platform_truth([HELD_THEN_SHUT_DOWN, OUTPUT_TWO]) == PlatformTruth((20.25, 57.061), 0)
