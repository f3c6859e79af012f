"""Why each environment exists, on fake environments and an injected clock.

Held inits (initialized, not invoked), proactive on-demand inits, provisioned recycling, and the
FirstInvoke class (never, prompt, delayed) the ground truth gives every environment it stops.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from concurrency_observer import schema
from concurrency_observer.local.extension_timeline import ExtensionTimeline
from concurrency_observer.local.fleet import WARMUP_PAYLOAD, Fleet, FleetConfig, FleetError
from concurrency_observer.local.load import LoadProfile, burst_times, proactive_schedule
from tests.unit.test_fleet import FakeClock, FakeEnvironment, FakeFactory, hold, wait_busy

PC = schema.INIT_PROVISIONED
OD = schema.INIT_ON_DEMAND
NEVER = schema.FIRST_INVOKE_NEVER
PROMPT = schema.FIRST_INVOKE_PROMPT
DELAYED = schema.FIRST_INVOKE_DELAYED


def config(**changes: float | int | None) -> FleetConfig:
    """Threshold 2 s with a 0.5 s margin, idle timeout 5 s, at most 4, no shutdown gap."""
    settings: dict[str, float | int | None] = {
        "max_environments": 4,
        "idle_timeout": 5.0,
        "shutdown_gap": 0.0,
        "prompt_threshold": 2.0,
        "threshold_margin": 0.5,
    }
    settings.update(changes)
    return FleetConfig(**settings)  # type: ignore[arg-type]


@pytest.fixture
def clocked() -> Iterator[tuple[Fleet, FakeFactory, FakeClock]]:
    """A fleet on fakes whose idle reaping and recycling happen only when the test asks."""
    factory, clock = FakeFactory(), FakeClock()
    with Fleet(factory, config(), clock=clock, reaper=False) as fleet:
        yield fleet, factory, clock


def test_each_class_per_init_type(clocked: tuple[Fleet, FakeFactory, FakeClock]) -> None:
    """A scripted run: PC prompt and delayed, on-demand never (ahead of demand) and prompt."""
    fleet, factory, clock = clocked
    fleet.provision(2)  # a, b held at t=100
    clock.now += 1.0
    fleet.invoke()  # to a, 1 s after its init: prompt
    clock.now += 0.9
    assert fleet.initialize_ahead()  # c, on-demand, held at t=101.9
    clock.now += 1.6
    busy, _ = hold(fleet)  # a again (already invoked: preferred)
    wait_busy(fleet, 1)
    fleet.invoke()  # b, 3.5 s after its init: delayed
    factory.made[0].release.set()
    busy.join()
    factory.made[0].release.clear()  # a is held busy again below
    a_busy, _ = hold(fleet)
    b_busy, _ = hold(fleet)
    wait_busy(fleet, 2)
    c_outcome = fleet.invoke()  # c is 1.6 s old: within the margin, passed over
    assert c_outcome.cold  # so d starts cold: prompt
    for environment in factory.made[:2]:
        environment.release.set()
    a_busy.join()
    b_busy.join()
    clock.now += 3.6  # c: 5.2 s since its init, never invoked
    assert fleet.reap_idle() == 1  # c (d was used 3.6 s ago)
    fleet.close()
    truth = fleet.snapshot()
    assert [e.name for e in factory.made] == ["pc1", "pc2", "od-ahead3", "od4"]
    assert factory.made[2].payloads == []
    assert truth.first_invoke == {
        (PC, PROMPT): 1,
        (PC, DELAYED): 1,
        (OD, NEVER): 1,
        (OD, PROMPT): 1,
    }
    assert truth.proactive == 1
    assert truth.started == truth.stopped == {PC: 2, OD: 2}
    assert truth.warmups == 2  # a's and b's held warm-ups were let through; c's never


def test_a_held_environment_is_released_after_the_margin(
    clocked: tuple[Fleet, FakeFactory, FakeClock],
) -> None:
    """Held 2.4 s (within 0.5 s of the 2 s threshold): passed over; at 2.5 s: used, delayed."""
    fleet, factory, clock = clocked
    assert fleet.initialize_ahead()
    clock.now += 2.4
    assert fleet.invoke().cold
    clock.now += 0.1
    busy, _ = hold(fleet)  # the warm one, used most recently and already invoked
    wait_busy(fleet, 1)
    outcome = fleet.invoke()
    factory.made[1].release.set()
    busy.join()
    fleet.close()
    assert not outcome.cold
    assert factory.made[0].payloads == [WARMUP_PAYLOAD, None]
    assert fleet.snapshot().first_invoke == {(OD, DELAYED): 1, (OD, PROMPT): 1}


def test_provisioned_environments_are_recycled_after_their_maximum_lifetime() -> None:
    """Lifetime 10 s: at 9.9 s nothing; at 10 s a replacement is held, then the old one stops."""
    factory, clock = FakeFactory(), FakeClock()
    with Fleet(factory, config(pc_max_lifetime=10.0), clock=clock, reaper=False) as fleet:
        fleet.provision(1)
        clock.now += 1.0
        fleet.invoke()
        clock.now += 8.9
        assert fleet.recycle_provisioned() == 0
        clock.now += 0.1
        assert fleet.recycle_provisioned() == 1
        fleet.wait_for_shutdowns()
        during = fleet.snapshot()
        assert fleet.provisioned_ready() == 1
        assert fleet.invoke().init_type == PC
        assert factory.made[1].payloads == [WARMUP_PAYLOAD, None]  # the replacement served it
    truth = fleet.snapshot()
    assert (during.replacements, during.recycled, during.live) == (1, 1, {PC: 1})
    assert factory.made[0].shutdowns == 1
    assert truth.started == {PC: 2}
    assert truth.first_invoke == {(PC, PROMPT): 2}  # the old one at 1 s, its replacement at 0 s


def test_initializing_ahead_stops_at_the_maximum() -> None:
    """Ahead-of-demand inits count against max_environments, like every environment."""
    factory = FakeFactory()
    with Fleet(factory, config(max_environments=2), clock=FakeClock(), reaper=False) as fleet:
        assert fleet.initialize_ahead()
        assert fleet.initialize_ahead()
        assert not fleet.initialize_ahead()
        assert fleet.snapshot().proactive == 2
    assert len(factory.made) == 2


def test_config_checks_the_threshold_and_lifetime() -> None:
    """A margin at or above the threshold, or a zero lifetime, is refused in one line."""
    with pytest.raises(FleetError, match="threshold"):
        config(threshold_margin=2.0)
    with pytest.raises(FleetError, match="pc-max-lifetime"):
        config(pc_max_lifetime=0.0)
    assert config().first_invoke_class(None) == NEVER
    assert config().first_invoke_class(2.0) == PROMPT
    assert config().first_invoke_class(2.001) == DELAYED


# A seeded list of environments, each handled alone (so routing has one choice): its init type,
# and when it is first invoked after its init (None: never). Threshold 2 s, margin 0.5 s.
SEED = 7


def seeded_environments() -> list[tuple[str, float | None]]:
    """Twelve environments from ``random.Random(SEED)``, gaps outside the margin."""
    rng = random.Random(SEED)
    environments: list[tuple[str, float | None]] = []
    for _ in range(12):
        init_type = rng.choice((PC, OD))
        gap = rng.choice((None, round(rng.uniform(0.0, 1.4), 2), round(rng.uniform(2.6, 4.5), 2)))
        environments.append((init_type, gap))
    return environments


def test_the_seeded_list_is_the_one_counted_by_hand() -> None:
    """The list the next test plays, spelled out: the hand count below is of exactly this."""
    assert seeded_environments() == [
        (OD, None),
        (PC, 2.78),
        (PC, None),
        (OD, 3.06),
        (OD, None),
        (PC, None),
        (PC, 0.78),
        (PC, 3.68),
        (PC, None),
        (OD, 3.95),
        (PC, 3.54),
        (OD, 1.09),
    ]


def test_ground_truth_classes_match_a_hand_count_of_a_seeded_list() -> None:
    """Each seeded environment initialized ahead (held), invoked at its gap or never, stopped."""
    factory, clock = FakeFactory(), FakeClock()
    with Fleet(factory, config(idle_timeout=30.0), clock=clock, reaper=False) as fleet:
        for init_type, gap in seeded_environments():
            if init_type == PC:
                fleet.provision(1)
            else:
                assert fleet.initialize_ahead()
            if gap is not None:
                clock.now += gap
                assert not fleet.invoke().cold
            clock.now += 30.0
            if init_type == PC:
                fleet.provision(0)
            else:
                assert fleet.reap_idle() == 1
            fleet.wait_for_shutdowns()
        truth = fleet.snapshot()
    # By hand, from the list: PC never 3 (3rd, 6th, 9th), prompt 1 (0.78), delayed 3 (2.78,
    # 3.68, 3.54); on-demand never 2 (1st, 5th), prompt 1 (1.09), delayed 2 (3.06, 3.95).
    assert truth.first_invoke == {
        (PC, NEVER): 3,
        (PC, PROMPT): 1,
        (PC, DELAYED): 3,
        (OD, NEVER): 2,
        (OD, PROMPT): 1,
        (OD, DELAYED): 2,
    }
    assert truth.started == truth.stopped == {PC: 7, OD: 5}
    assert truth.proactive == 5
    assert truth.warmups == truth.served == 7


def test_proactive_schedule_is_seeded_and_the_default_one_precedes_a_burst() -> None:
    """Same seed, same inits; the default run (rate 0.2, seed 1) has one 2.5-5 s before a burst.

    That init is what makes the default ``simulate`` show a delayed (proactive) on-demand
    environment: a burst takes every idle environment, and it is past the margin by then.
    """
    assert proactive_schedule(0.2, 40.0, 1) == proactive_schedule(0.2, 40.0, 1)
    assert proactive_schedule(0.0, 40.0, 1) == []
    bursts = burst_times(LoadProfile(rate=4.0, duration=40.0, seed=1))
    ahead = proactive_schedule(0.2, 40.0, 1)
    assert any(2.5 < burst - moment < 5.0 for burst in bursts for moment in ahead)
    assert Counter(round(m) for m in ahead)  # not empty


def test_spare_provisioned_environments_serve_no_more_than_the_level() -> None:
    """Level 1 x 2.0: two held; with one busy the next spills to on-demand; the spare: never."""
    factory = FakeFactory()
    cfg = config(over_provisioning=2.0)
    with Fleet(factory, cfg, clock=FakeClock(), reaper=False) as fleet:
        assert fleet.provision(1) == 2
        busy, _ = hold(fleet)
        wait_busy(fleet, 1)
        spilled = fleet.invoke()
        factory.made[0].release.set()
        busy.join()
    assert (spilled.init_type, spilled.cold) == (OD, True)
    assert fleet.snapshot().first_invoke == {(PC, PROMPT): 1, (PC, NEVER): 1, (OD, PROMPT): 1}


def test_verdict_compares_every_first_invoke_class_per_init_type() -> None:
    """Three classes per init type that has shutdowns; one class off is the one failing check."""
    from concurrency_observer.local.fleet import FleetSnapshot
    from concurrency_observer.local.simulation import RECORDS, Recorded, verdict_checks

    truth = FleetSnapshot(
        started={PC: 3, OD: 2},
        stopped={PC: 3, OD: 2},
        invocations={PC: 4, OD: 2},
        live={},
        starting=0,
        busy=0,
        warmups=4,
        served=2,
        throttled=0,
        failed=0,
        idle_shutdowns=2,
        forced_shutdowns=0,
        peak_live=5,
        first_invoke={(PC, NEVER): 1, (PC, DELAYED): 2, (OD, PROMPT): 1, (OD, DELAYED): 1},
    )
    shutdown = schema.ENVIRONMENT_SHUTDOWN
    recorded: Recorded = {
        (schema.ENVIRONMENT_INIT, None): 5.0,
        (schema.ENVIRONMENT_INIT, PC): 3.0,
        (schema.ENVIRONMENT_INIT, OD): 2.0,
        (shutdown, None): 5.0,
        (shutdown, PC): 3.0,
        (shutdown, OD): 2.0,
        (schema.ENVIRONMENT_INVOCATIONS, None): 6.0,
        (schema.ENVIRONMENT_INVOCATIONS, PC): 4.0,
        (schema.ENVIRONMENT_INVOCATIONS, OD): 2.0,
        (shutdown, PC, NEVER): 1.0,
        (shutdown, PC, DELAYED): 2.0,
        (shutdown, OD, PROMPT): 1.0,
        (shutdown, OD, DELAYED): 1.0,
        (RECORDS, None): 5.0,
        (RECORDS, PC): 3.0,
        (RECORDS, OD): 2.0,
    }
    checks = verdict_checks(truth, recorded)
    by_class = [(c.init_type, c.first_invoke) for c in checks if c.first_invoke]
    assert by_class == [(OD, c) for c in schema.FIRST_INVOKE_CLASSES] + [
        (PC, c) for c in schema.FIRST_INVOKE_CLASSES
    ]
    assert all(check.matches for check in checks)
    wrong = verdict_checks(
        truth, {**recorded, (shutdown, PC, NEVER): 0.0, (shutdown, PC, PROMPT): 1.0}
    )
    assert sorted((c.init_type, c.first_invoke) for c in wrong if not c.matches) == [
        (PC, NEVER),
        (PC, PROMPT),
    ]


def test_a_held_environment_waits_until_its_class_is_beyond_doubt() -> None:
    """Threshold 2, margin 0.5: prompt up to 1.5 s after sending; delayed from 2.5 s after held."""
    cfg = config()
    assert cfg.releasable(since_init=1.5, since_ready=0.5)
    assert not cfg.releasable(since_init=1.6, since_ready=1.6)
    assert not cfg.releasable(since_init=3.4, since_ready=2.4)  # init slow to reach the gate
    assert cfg.releasable(since_init=3.5, since_ready=2.5)


class SlowInitFactory(FakeFactory):
    """Fakes whose held init reaches the gate ``seconds`` after it is sent (on ``clock``)."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        super().__init__()
        self.clock = clock
        self.seconds = seconds

    def __call__(self, name: str, init_type: str) -> FakeEnvironment:
        environment = super().__call__(name, init_type)
        hold_init = environment.hold_init

        def slow(payload: object = None) -> None:
            self.clock.now += self.seconds
            hold_init(payload)

        environment.hold_init = slow  # type: ignore[method-assign]
        return environment


def test_a_slow_held_init_is_released_late_enough_from_the_gate() -> None:
    """Held 1 s after sending: at 3.4 s from sending (2.4 s held) passed over; at 3.5 s delayed."""
    clock = FakeClock()
    factory = SlowInitFactory(clock, 1.0)
    with Fleet(factory, config(), clock=clock, reaper=False) as fleet:
        assert fleet.initialize_ahead()
        clock.now += 2.4
        assert fleet.invoke().cold
        clock.now += 0.1
        busy, _ = hold(fleet)  # the cold one: already invoked, preferred
        wait_busy(fleet, 1)
        outcome = fleet.invoke()
        factory.made[1].release.set()
        busy.join()
    assert not outcome.cold
    assert fleet.snapshot().first_invoke == {(OD, DELAYED): 1, (OD, PROMPT): 1}


class TimedAnswer:
    """An answer that says when the function was invoked, as ``InvokeResult`` does."""

    def __init__(self, invoked_monotonic: float) -> None:
        self.invoked_monotonic = invoked_monotonic


class LongWorkFactory(FakeFactory):
    """Fakes invoked ``invoked_after`` s after being called, answering ``work`` s later."""

    def __init__(self, clock: FakeClock, invoked_after: float, work: float) -> None:
        super().__init__()
        self.clock = clock
        self.invoked_after = invoked_after
        self.work = work

    def __call__(self, name: str, init_type: str) -> FakeEnvironment:
        environment = super().__call__(name, init_type)

        def invoke(payload: object = None) -> TimedAnswer:
            invoked_at = self.clock.now + self.invoked_after
            self.clock.now += self.invoked_after + self.work
            return TimedAnswer(invoked_at)

        environment.invoke = invoke  # type: ignore[method-assign]
        return environment


def test_a_cold_start_is_timed_by_when_the_function_was_invoked() -> None:
    """Invoked 0.4 s after its init was sent, answered 5 s later: prompt, and no doubt about it."""
    clock = FakeClock()
    with Fleet(LongWorkFactory(clock, 0.4, 5.0), config(), clock=clock, reaper=False) as fleet:
        assert fleet.invoke().cold
    truth = fleet.snapshot()
    assert truth.first_invoke == {(OD, PROMPT): 1}
    assert truth.near_threshold == 0


class TimelineFactory(LongWorkFactory):
    """``LongWorkFactory`` fakes whose RIE lines put ``lower`` s from registering to INVOKE."""

    def __init__(self, clock: FakeClock, invoked_after: float, lower: float) -> None:
        super().__init__(clock, invoked_after, 0.1)
        self.lower = lower

    def __call__(self, name: str, init_type: str) -> FakeEnvironment:
        environment = super().__call__(name, init_type)
        line = ExtensionTimeline(1000.0, 1000.1, 1000.101 + self.lower, 1010.0, 1010.1)
        environment.timeline = lambda: line  # type: ignore[attr-defined]
        return environment


@pytest.mark.parametrize(
    ("invoked_after", "lower", "usage", "near"),
    [
        (1.8, 1.2, PROMPT, 0),  # at most 1.8 s: prompt for sure
        (2.3, 1.5, DELAYED, 1),  # between 1.5 and 2.3 s: either class is right
        (2.6, 2.1, DELAYED, 0),  # at least 2.1 s: delayed for sure
    ],
)
def test_a_cold_start_is_near_the_threshold_only_when_its_interval_straddles_it(
    invoked_after: float, lower: float, usage: str, near: int
) -> None:
    """The class is the upper bound's; near the threshold when the RIE's lower bound is below."""
    clock = FakeClock()
    factory = TimelineFactory(clock, invoked_after, lower)
    with Fleet(factory, config(), clock=clock, reaper=False) as fleet:
        fleet.invoke()
    truth = fleet.snapshot()
    assert truth.first_invoke == {(OD, usage): 1}
    assert truth.near_threshold == near
    assert truth.either_way == ({OD: 1} if near else {})
    assert len(truth.spans) == 1
    assert truth.spans_missing == 0


class StuckFactory(FakeFactory):
    """Fakes whose ``{"hold": True}`` invocation gives up by itself only after 60 s."""

    def __call__(self, name: str, init_type: str) -> FakeEnvironment:
        environment = super().__call__(name, init_type)
        answer = environment.invoke

        def invoke(payload: object = None) -> object:
            if isinstance(payload, dict) and payload.get("hold"):
                environment.entered.set()
                environment.release.wait(60)
                return {"ok": True}
            return answer(payload)

        environment.invoke = invoke  # type: ignore[method-assign]
        return environment


def test_close_does_not_wait_for_a_recycled_environment_stuck_busy() -> None:
    """The recycler waits for a busy old environment; close() ends that wait, stops it once."""
    clock, factory = FakeClock(), StuckFactory()
    cfg = config(pc_max_lifetime=10.0, reaper_interval=0.01)
    fleet = Fleet(factory, cfg, clock=clock)  # with the reaper and recycler threads
    fleet.provision(1)
    busy, _ = hold(fleet)  # the provisioned one, held busy until released
    wait_busy(fleet, 1)
    clock.now += 10.0
    deadline = time.monotonic() + 5
    while fleet.snapshot().started.get(PC, 0) < 2:  # the recycler has started a replacement
        assert time.monotonic() < deadline, "no replacement was started"
        time.sleep(0.005)
    closer = threading.Thread(target=fleet.close, kwargs={"inflight_timeout": 0.1})
    closer.start()
    closer.join(20)  # a liveness bound, not a timing: the stuck invocation lasts 60 s
    stuck = closer.is_alive()
    factory.made[0].release.set()
    busy.join()
    closer.join()
    assert not stuck
    assert [e.shutdowns for e in factory.made] == [1, 1]
