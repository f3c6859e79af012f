"""simulate's truth within bounds: the first-invoke class near the threshold, the peak on the
extensions' own instants (the RIE's lines), and inits whose extension went without telemetry."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from concurrency_observer import schema
from concurrency_observer.local.extension_timeline import (
    ExtensionTimeline,
    LiveSpan,
    extension_timeline,
    peak_bounds,
)
from concurrency_observer.local.fleet import Fleet, FleetConfig, FleetSnapshot
from concurrency_observer.local.platform_truth import (
    PlatformTruth,
    platform_truth,
    platform_verdict,
)
from concurrency_observer.local.simulation import (
    COLD_STARTS_FELT,
    Recorded,
    SimulationSettings,
    cold_start_checks,
    peak_checks,
    verdict_checks,
)
from concurrency_observer.reporting.simulation_output import near_threshold_note, peak_clause
from tests.unit.test_fleet import FakeClock, FakeEnvironment, FakeFactory
from tests.unit.test_fleet_classes import TimedAnswer, config

OD = schema.INIT_ON_DEMAND
NEVER, PROMPT, DELAYED = (
    schema.FIRST_INVOKE_NEVER,
    schema.FIRST_INVOKE_PROMPT,
    schema.FIRST_INVOKE_DELAYED,
)

# A cold start as the RIE logged it (measured here, 2026-12-04), the extension's record omitted.
COLD_START = """\
04 Dec 2026 16:37:37,978 [INFO] (rapid) exec '/venv/bin/python' (cwd=/task, handler=handler.handler)
START RequestId: a03088e7-f46c-438a-b124-0830404c5b81 Version: $LATEST
04 Dec 2026 16:37:37,988 [INFO] (rapid) INIT START(type: on-demand, phase: init)
04 Dec 2026 16:37:38,025 [INFO] (rapid) External agent concurrency-observer (1feea5dd) \
registered, subscribed to [INVOKE SHUTDOWN]
[concurrency-observer] INFO on-demand environment of f, sink cloudwatch: init record delivered; \
telemetry on
INIT HELD(at: 1796402258.069084)
04 Dec 2026 16:37:38,070 [INFO] (rapid) INIT RTDONE(status: success)
04 Dec 2026 16:37:38,070 [INFO] (rapid) INIT REPORT(durationMs: 82.045000)
04 Dec 2026 16:37:38,070 [INFO] (rapid) INVOKE START(requestId: a03088e7)
04 Dec 2026 16:37:38,373 [INFO] (rapid) INVOKE RTDONE(status: success, produced bytes: 0)
04 Dec 2026 16:37:42,459 [INFO] (rapid) Received signal signal=terminated
04 Dec 2026 16:37:42,459 [INFO] (rapid) Shutting down...
04 Dec 2026 16:37:43,459 [INFO] (rapid) INVOKE START(requestId: never-the-first)
04 Dec 2026 16:37:43,488 [INFO] (rapid) Received signal signal=terminated
"""
BASE = 1796402257.0  # 04 Dec 2026 16:37:37 UTC


def test_the_timeline_takes_the_first_of_each_line_the_rie_stamped() -> None:
    """INIT START, the registration, the first INVOKE START and the first signal, to the ms."""
    timeline = extension_timeline(COLD_START, "concurrency-observer", exited=BASE + 5.6)
    assert timeline.init_started == pytest.approx(BASE + 0.988)
    assert timeline.registered == pytest.approx(BASE + 1.025)
    assert timeline.invoke_started == pytest.approx(BASE + 1.070)
    assert timeline.signalled == pytest.approx(BASE + 5.459)
    # The extension started before registering, got its INVOKE after INVOKE START: at least
    # 44 ms (the record of that run says 47.141).
    assert timeline.lower_gap == pytest.approx(0.044, abs=1e-6)
    found = timeline.span()
    assert found is not None
    ends = (found.start_from, found.start_by, found.shutdown_from, found.shutdown_by)
    assert ends == pytest.approx((BASE + 0.988, BASE + 1.026, BASE + 5.459, BASE + 5.6))


def test_another_extension_or_missing_lines_leave_the_bounds_unknown() -> None:
    """No registration of this extension: no lower bound; never exited: no span."""
    other = extension_timeline(COLD_START, "someone-else", exited=None)
    assert other.registered is None
    assert other.lower_gap is None
    assert other.span() is None


def span(start: float, end: float) -> LiveSpan:
    """A life starting within 40 ms before ``start`` and ending within 5 ms after ``end``."""
    return LiveSpan(start - 0.04, start, end, end + 0.005)


def test_peak_bounds_widen_only_where_two_lives_meet_within_the_stamps() -> None:
    """Apart: one at a time, exactly; one ending as the next may start: one or two."""
    assert peak_bounds([span(0.0, 1.0), span(2.0, 3.0)]) == (1, 1)
    assert peak_bounds([span(0.0, 1.0), span(1.002, 3.0), span(0.5, 4.0)]) == (2, 3)
    assert peak_bounds([]) == (0, 0)


def snapshot(**changes: object) -> FleetSnapshot:
    """Five on-demand environments: 3 prompt, 2 delayed, of which 2 near the threshold."""
    fields: dict[str, object] = {
        "started": {OD: 5},
        "stopped": {OD: 5},
        "invocations": {OD: 9},
        "live": {},
        "starting": 0,
        "busy": 0,
        "warmups": 0,
        "served": 9,
        "throttled": 0,
        "failed": 0,
        "idle_shutdowns": 5,
        "forced_shutdowns": 0,
        "peak_live": 4,
        "first_invoke": {(OD, PROMPT): 3, (OD, DELAYED): 2},
        "either_way": {OD: 2},
    }
    fields.update(changes)
    return FleetSnapshot(**fields)  # type: ignore[arg-type]


def classes(prompt: int, delayed: int) -> Recorded:
    """What the records say of the five, class by class."""
    shutdown = schema.ENVIRONMENT_SHUTDOWN
    return {(shutdown, OD, PROMPT): prompt, (shutdown, OD, DELAYED): delayed, (shutdown, OD): 5}


@pytest.mark.parametrize(
    ("prompt", "delayed", "matches"),
    [(3, 2, True), (4, 1, True), (5, 0, True), (2, 3, False), (6, 0, False)],
)
def test_either_class_is_right_only_for_the_environments_near_the_threshold(
    prompt: int, delayed: int, matches: bool
) -> None:
    """Up to the 2 near ones may be prompt instead of delayed; one more either way is wrong."""
    checks = [c for c in verdict_checks(snapshot(), classes(prompt, delayed)) if c.first_invoke]
    by_class = {c.first_invoke: c for c in checks}
    assert by_class[PROMPT].accepted == (3, 5)
    assert by_class[DELAYED].accepted == (0, 2)
    assert by_class[NEVER].accepted is None
    assert all(c.matches for c in checks) is matches


def test_cold_starts_felt_take_the_same_bounds() -> None:
    """Felt: the on-demand prompt ones, 3 to 5 with 2 near; none near: exactly 3."""
    cold = type("Cold", (), {"invocations": 9.0, "felt": 5})()
    felt = next(c for c in cold_start_checks(snapshot(), cold) if c.metric == COLD_STARTS_FELT)
    assert (felt.accepted, felt.matches, felt.exact) == ((3, 5), True, False)
    sure = next(
        c for c in cold_start_checks(snapshot(either_way={}), cold) if c.metric == COLD_STARTS_FELT
    )
    assert (sure.accepted, sure.matches) == (None, False)


def test_the_peak_is_compared_on_the_same_instants_and_exact_only_where_it_is() -> None:
    """Known exactly: only 2 matches; known to 2-3: both do; a span missing: not compared."""
    apart = snapshot(spans=(span(0.0, 1.0), span(0.5, 3.0)))
    (exact,) = peak_checks(apart, 2)
    assert (exact.truth, exact.accepted, exact.matches) == (2, None, True)
    assert not peak_checks(apart, 3)[0].matches
    meeting = snapshot(spans=(span(0.0, 1.0), span(1.002, 3.0), span(0.5, 4.0)))
    (bounded,) = peak_checks(meeting, 3)
    assert (bounded.accepted, bounded.matches, bounded.exact) == ((2, 3), True, False)
    assert peak_checks(snapshot(spans=apart.spans, spans_missing=1), 2) == []
    assert peak_checks(apart, None) == []  # the report's peak is from the metric: not exact


def test_the_near_ones_are_named_in_one_line() -> None:
    """'2 near the threshold, accepted either way', with the threshold."""
    settings = SimulationSettings(fleet=FleetConfig(prompt_threshold=2.0))
    line = near_threshold_note(snapshot(), settings)
    assert line.startswith("2 near the threshold, accepted either way")
    assert "\n" not in line
    assert "2s" in line
    Console(file=io.StringIO(), width=80).print(line)  # renders


TELEMETRY_OFF = "\n".join(
    [
        "02 Dec 2026 17:57:35,118 [INFO] (rapid) INIT START(type: on-demand, phase: init)",
        "02 Dec 2026 17:57:35,144 [INFO] (rapid) External agent concurrency-observer (id) "
        "registered, subscribed to [INVOKE SHUTDOWN]",
        "[concurrency-observer] INFO on-demand environment of f, sink cloudwatch: init record "
        "delivered; telemetry off: subscription refused (no response: timed out)",
        "02 Dec 2026 17:57:36,180 [INFO] (rapid) INIT REPORT(durationMs: 1281.225000)",
    ]
)
TELEMETRY_ON = (
    TELEMETRY_OFF.replace("1281.225", "40.5")
    .replace("telemetry off: subscription refused", "telemetry on")
    .replace(" (no response: timed out)", "")
)


def test_an_init_whose_extension_went_without_telemetry_is_counted_apart() -> None:
    """Its duration cannot be in its record: not compared, counted as lost; filled elsewhere, it is
    compared."""
    truth = platform_truth([TELEMETRY_OFF, TELEMETRY_ON])
    assert truth == PlatformTruth((40.5,), 0, lost_durations_ms=(1281.225,))
    assert truth.lost == 1
    assert platform_verdict(truth, [{"initDurationMs": 40.5}, {"invocations": 1}]).matches
    filled = [{"initDurationMs": 40.5}, {"initDurationMs": 1281.0}]
    assert platform_verdict(truth, filled).largest_gap_ms == pytest.approx(0.225)
    assert platform_verdict(truth, filled).matches
    wrong = [{"initDurationMs": 40.5}, {"initDurationMs": 999.0}]
    assert not platform_verdict(truth, wrong).matches


def test_an_unsubscribed_timeline_keeps_its_class_exact() -> None:
    """No lower bound: a first invoke known from above only is never 'either way'."""
    config = FleetConfig(prompt_threshold=2.0, threshold_margin=0.5)
    assert not config.either_way(ExtensionTimeline().lower_gap, 2.5)
    assert config.either_way(1.5, 2.5)
    assert not config.either_way(2.1, 2.5)
    assert not config.either_way(1.0, 1.9)


def test_the_verdict_names_the_peak_it_compared() -> None:
    """Exact: '(2)'; within bounds: '(2-3)'; not compared: nothing."""
    (exact,) = peak_checks(snapshot(spans=(span(0.0, 1.0), span(0.5, 3.0))), 2)
    meeting = (span(0.0, 1.0), span(1.002, 3.0), span(0.5, 4.0))
    (bounded,) = peak_checks(snapshot(spans=meeting), 3)
    assert peak_clause([exact]) == ", and the peak live on the records' own instants (2)"
    assert peak_clause([bounded]).endswith("(2-3)")
    assert peak_clause([]) == ""


class SlowReleaseFactory(FakeFactory):
    """Fakes whose released warm-up reaches the function ``late`` s after the init was sent."""

    def __init__(self, clock: FakeClock, late: float) -> None:
        super().__init__()
        self.clock = clock
        self.late = late

    def __call__(self, name: str, init_type: str) -> FakeEnvironment:
        environment = super().__call__(name, init_type)
        sent_at = self.clock.now

        def release_init() -> object:
            return TimedAnswer(sent_at + self.late)

        environment.release_init = release_init  # type: ignore[method-assign]
        line = ExtensionTimeline(1000.0, 1000.1, 1000.101 + 1.2, 1010.0, 1010.1)
        environment.timeline = lambda: line  # type: ignore[attr-defined]
        return environment


def test_a_held_init_is_timed_by_when_its_warm_up_reached_the_function() -> None:
    """Released within the margin, but the warm-up got there 2.4 s after the init was sent: the
    upper bound says delayed, the RIE's lines 1.2 s at least: near the threshold."""
    clock = FakeClock()
    with Fleet(SlowReleaseFactory(clock, 2.4), config(), clock=clock, reaper=False) as fleet:
        assert fleet.initialize_ahead()
        clock.now += 1.0  # within 2 - 0.5 of sending: released as prompt for sure, once
        assert not fleet.invoke().cold
    truth = fleet.snapshot()
    assert truth.first_invoke == {(OD, DELAYED): 1}
    assert truth.either_way == {OD: 1}
