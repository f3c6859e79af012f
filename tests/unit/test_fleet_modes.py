"""The control plane with several invocations per environment (Lambda Managed Instances) on fakes.

Routing packs invocations onto one environment up to ``max_concurrency``, joins one still
starting, scales out only when all are full; an environment that initializes on start is counted
then and always gets its SHUTDOWN; what the verdict compares for SHUTDOWN-only setups.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from concurrency_observer import schema
from concurrency_observer.errors import UserError
from concurrency_observer.local.fleet import Fleet, FleetConfig, FleetError, Outcome
from concurrency_observer.local.setups import MODE_MANAGED_INSTANCES, RUNTIME_BASH
from concurrency_observer.local.simulation import (
    NOT_EXPECTED,
    RECORDS,
    Recorded,
    Recording,
    SimulationSettings,
    managed_instances_fleet,
    unrecorded_figures,
    verdict_checks,
)
from tests.unit.test_fleet import FakeClock, FakeEnvironment, FakeFactory
from tests.unit.test_fleet_load_and_verdict import snapshot

LMI = schema.INIT_MANAGED_INSTANCES
CONCURRENCY = 3


class GatedEnvironment(FakeEnvironment):
    """A fake whose invocation ``{"until": event}`` stays in flight until that event is set."""

    def invoke(self, payload: object = None) -> object:
        answer = super().invoke(payload)
        if isinstance(payload, dict) and isinstance(payload.get("until"), threading.Event):
            payload["until"].wait(5)
        return answer


class GatedFactory(FakeFactory):
    """Makes ``GatedEnvironment``s."""

    def __call__(self, name: str, init_type: str) -> FakeEnvironment:
        environment = GatedEnvironment(name, init_type)
        self.made.append(environment)
        return environment


class SlowStartEnvironment(FakeEnvironment):
    """A fake whose ``start`` waits for ``may_start`` (and fails if told to)."""

    def __init__(self, name: str, init_type: str, may_start: threading.Event, fail: bool) -> None:
        super().__init__(name, init_type)
        self.may_start = may_start
        self.fail = fail

    def start(self) -> object:
        self.may_start.wait(5)
        if self.fail:
            raise UserError(f"{self.name} cannot start")
        return super().start()


class SlowStartFactory(FakeFactory):
    """Makes ``SlowStartEnvironment``s that start once ``may_start`` is set."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.may_start = threading.Event()
        self.fail = fail

    def __call__(self, name: str, init_type: str) -> FakeEnvironment:
        environment = SlowStartEnvironment(name, init_type, self.may_start, self.fail)
        self.made.append(environment)
        return environment


def lmi_config(**fields: object) -> FleetConfig:
    """A Managed Instances control plane: 3 invocations per environment, at most 4 of them."""
    base = FleetConfig(max_environments=4, idle_timeout=5.0, shutdown_gap=0.0, **fields)  # type: ignore[arg-type]
    return managed_instances_fleet(base, CONCURRENCY)


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test moves."""
    return FakeClock()


@pytest.fixture
def factory() -> FakeFactory:
    """A factory of fake environments (``{"until": event}`` holds one invocation)."""
    return GatedFactory()


@pytest.fixture
def fleet(factory: FakeFactory, clock: FakeClock) -> Iterator[Fleet]:
    """A Managed Instances fleet of fakes, reaped only when asked."""
    with Fleet(factory, lmi_config(), clock=clock, reaper=False) as instance:
        yield instance


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` (bounded: a failure, not a hang)."""
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def invoked(factory: FakeFactory) -> int:
    """Invocations that reached any of the factory's environments."""
    return sum(len(e.payloads) for e in factory.made)


def held_invocations(fleet: Fleet, count: int) -> list[threading.Thread]:
    """Start ``count`` invocations that stay in flight until their environment's ``release``."""
    threads = [
        threading.Thread(target=fleet.invoke, args=({"hold": True, "n": n},)) for n in range(count)
    ]
    for thread in threads:
        thread.start()
    return threads


def test_invocations_share_one_environment_until_it_is_full(
    fleet: Fleet, factory: FakeFactory
) -> None:
    """3 at once go to one environment; the 4th, with it full, starts a second one."""
    first = held_invocations(fleet, CONCURRENCY)
    wait_until(lambda: len(factory.made[0].payloads) == CONCURRENCY, "three in one environment")
    assert len(factory.made) == 1
    fourth = held_invocations(fleet, 1)
    wait_until(lambda: invoked(factory) == CONCURRENCY + 1, "a fourth")
    assert len(factory.made) == 2
    assert [e.init_type for e in factory.made] == [LMI, LMI]
    for environment in factory.made:
        environment.release.set()
    for thread in first + fourth:
        thread.join()
    truth = fleet.snapshot()
    assert truth.started == {LMI: 2}
    assert truth.invocations == {LMI: 4}
    assert truth.peak_per_environment == CONCURRENCY
    assert truth.busy == 0


def test_the_busiest_environment_with_room_is_chosen(
    fleet: Fleet, factory: FakeFactory, clock: FakeClock
) -> None:
    """One environment serving 2 of 3, another idle and used last: the next packs onto the first."""
    gates = [threading.Event() for _ in range(4)]
    threads = []
    for n, gate in enumerate(gates):  # 3 fill the first environment, the 4th starts a second
        threads.append(threading.Thread(target=fleet.invoke, args=({"until": gate},)))
        threads[-1].start()
        wait_until(lambda: invoked(factory) == n + 1, "invoked")  # noqa: B023 (waited here)
    first, _second = factory.made
    gates[2].set()  # the first now serves 2 of 3
    wait_until(lambda: fleet.snapshot().served == 1, "one of the first's answered")
    clock.now += 1
    gates[3].set()  # the second one answers: idle, and used after the first
    wait_until(lambda: fleet.snapshot().served == 2, "the second one answered")
    assert fleet.invoke({"n": "next"}).outcome is Outcome.SERVED
    assert first.payloads[-1] == {"n": "next"}
    assert len(factory.made) == 2
    for gate in gates:
        gate.set()
    for thread in threads:
        thread.join()


def test_an_invocation_joins_an_environment_still_starting(factory: FakeFactory) -> None:
    """A second invocation during the first's start waits for that environment: no second one."""
    slow = SlowStartFactory()
    with Fleet(slow, lmi_config(), reaper=False) as fleet:
        threads = held_invocations(fleet, 2)
        wait_until(lambda: fleet.snapshot().peak_per_environment == 2, "both routed")
        assert len(slow.made) == 1
        assert fleet.snapshot().started == {}  # initializing on start: not counted before
        slow.may_start.set()
        wait_until(lambda: len(slow.made[0].payloads) == 2, "both invoked there")
        slow.made[0].release.set()
        for thread in threads:
            thread.join()
        truth = fleet.snapshot()
    assert (truth.started, truth.invocations, truth.failed) == ({LMI: 1}, {LMI: 2}, 0)


def test_invocations_joined_to_a_start_that_fails_fail_too() -> None:
    """Its environment does not start: the invocation that started it and the one joined fail."""
    slow = SlowStartFactory(fail=True)
    with Fleet(slow, lmi_config(), reaper=False) as fleet:
        outcomes: list[Outcome] = []
        threads = [
            threading.Thread(target=lambda: outcomes.append(fleet.invoke().outcome))
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        wait_until(lambda: fleet.snapshot().peak_per_environment == 2, "both routed")
        slow.may_start.set()
        for thread in threads:
            thread.join()
        truth = fleet.snapshot()
    assert outcomes == [Outcome.FAILED, Outcome.FAILED]
    assert (truth.failed, truth.started) == (2, {})
    assert len(slow.made) == 1


def test_initialized_on_start_ahead_of_demand_is_never_held(
    fleet: Fleet, factory: FakeFactory, clock: FakeClock
) -> None:
    """An environment initialized ahead of demand is counted at its start, not held, and reaped
    idle: never invoked."""
    assert fleet.initialize_ahead()
    (environment,) = factory.made
    assert environment.held is None  # no warm-up: the RIE's LMI mode initializes at start
    truth = fleet.snapshot()
    assert (truth.started, truth.held, truth.proactive) == ({LMI: 1}, 0, 1)
    clock.now += 6
    assert fleet.reap_idle() == 1
    fleet.wait_for_shutdowns()
    truth = fleet.snapshot()
    assert truth.stopped == {LMI: 1}
    assert truth.first_invoke == {(LMI, schema.FIRST_INVOKE_NEVER): 1}
    assert environment.shutdowns == 1


def test_an_environment_serving_any_invocation_is_not_reaped(
    fleet: Fleet, factory: FakeFactory, clock: FakeClock
) -> None:
    """Past the idle timeout with one invocation in flight it stays; once answered, it goes."""
    threads = held_invocations(fleet, 1)
    wait_until(lambda: invoked(factory) == 1, "invoked")
    clock.now += 60
    assert fleet.reap_idle() == 0
    factory.made[0].release.set()
    threads[0].join()
    clock.now += 6
    assert fleet.reap_idle() == 1


def test_closing_during_a_start_still_delivers_its_shutdown() -> None:
    """Initialized on start: an environment whose start ends after close() began gets SHUTDOWN
    (not a kill), and is counted started and stopped."""
    slow = SlowStartFactory()
    fleet = Fleet(slow, lmi_config(), reaper=False)
    invocation = threading.Thread(target=fleet.invoke, args=({"n": 1},))
    invocation.start()
    wait_until(lambda: len(slow.made) == 1, "a start under way")
    closing = threading.Thread(target=fleet.close)
    closing.start()
    wait_until(lambda: fleet.invoke().error == "the fleet is shutting down", "closing")
    slow.may_start.set()
    closing.join()
    invocation.join()
    (environment,) = slow.made
    truth = fleet.snapshot()
    assert (environment.shutdowns, environment.killed) == (1, False)
    assert (truth.started, truth.stopped) == ({LMI: 1}, {LMI: 1})


def test_max_concurrency_below_one_is_refused() -> None:
    """An environment serving 0 invocations at once is a configuration error."""
    with pytest.raises(FleetError, match="--max-concurrency"):
        FleetConfig(max_concurrency=0)


# --- what the verdict compares in SHUTDOWN-only setups ---------------------------------------


def test_shutdown_only_verdict_compares_inits_and_shutdowns_and_lists_the_rest() -> None:
    """No invocations nor FirstInvoke classes compared; they are listed as not recorded."""
    truth = snapshot({LMI: 2}, {LMI: 2}, {LMI: 9})
    recorded: Recorded = {
        (schema.ENVIRONMENT_INIT, None): 2.0,
        (schema.ENVIRONMENT_INIT, LMI): 2.0,
        (schema.ENVIRONMENT_SHUTDOWN, None): 2.0,
        (schema.ENVIRONMENT_SHUTDOWN, LMI): 2.0,
        (RECORDS, None): 2.0,
        (RECORDS, LMI): 2.0,
    }
    recording = Recording(invocations=False, why="SHUTDOWN only")
    checks = verdict_checks(truth, recorded, recording)
    assert {c.metric for c in checks} == {
        schema.ENVIRONMENT_INIT,
        schema.ENVIRONMENT_SHUTDOWN,
        RECORDS,
    }
    assert all(c.matches and c.first_invoke is None for c in checks)
    assert len(checks) == 6
    unrecorded = unrecorded_figures(truth, recording)
    invocations = [c for c in unrecorded if c.metric == schema.ENVIRONMENT_INVOCATIONS]
    assert [(c.init_type, c.truth) for c in invocations] == [(LMI, 9), (None, 9)]
    assert {c.first_invoke for c in unrecorded if c.first_invoke} == set(
        schema.FIRST_INVOKE_CLASSES
    )
    # The same truth with full recording compares invocations, and the missing ones mismatch.
    assert any(not c.matches for c in verdict_checks(truth, recorded))


def test_invocations_recorded_where_none_are_expected_are_a_mismatch() -> None:
    """A SHUTDOWN-only extension that reported invocations anyway fails the verdict."""
    truth = snapshot({LMI: 1}, {LMI: 1}, {LMI: 3})
    recorded: Recorded = {
        (schema.ENVIRONMENT_INIT, None): 1.0,
        (schema.ENVIRONMENT_INIT, LMI): 1.0,
        (schema.ENVIRONMENT_SHUTDOWN, None): 1.0,
        (schema.ENVIRONMENT_SHUTDOWN, LMI): 1.0,
        (RECORDS, None): 1.0,
        (RECORDS, LMI): 1.0,
        (schema.ENVIRONMENT_INVOCATIONS, None): 3.0,
    }
    checks = verdict_checks(truth, recorded, Recording(invocations=False))
    (wrong,) = [c for c in checks if not c.matches]
    assert (wrong.metric, wrong.truth, wrong.recorded) == (schema.ENVIRONMENT_INVOCATIONS, 0, 3.0)
    assert wrong.label.endswith(NOT_EXPECTED)


def test_each_setup_says_what_it_records_and_how_it_runs() -> None:
    """Standard Python, LMI (its invocations from the Telemetry API) and the bash engine (it
    counts INVOKE) record everything; the bash engine on LMI every figure but the classes; each
    run its own way (LMI concurrency and its real Telemetry API; the standard mode's emulated
    one; the bash runtime with python3 hidden and nothing to listen; LMI's bash engine asked for
    by CONCURRENCY_OBSERVER_ENGINE)."""
    standard = SimulationSettings()
    assert standard.recording().invocations
    assert standard.environment_settings(None).max_concurrency is None
    assert standard.environment_settings(None).emulate_telemetry
    lmi = SimulationSettings(
        mode=MODE_MANAGED_INSTANCES, fleet=managed_instances_fleet(FleetConfig(), 5)
    )
    assert lmi.recording().invocations
    assert lmi.environment_settings(None).max_concurrency == 5
    assert not lmi.environment_settings(None).emulate_telemetry
    bash = SimulationSettings(runtime=RUNTIME_BASH, sink="emf")
    assert bash.recording().invocations
    assert bash.recording().classes
    assert not bash.environment_settings(None).emulate_telemetry
    environment = bash.environment_settings(None)
    assert environment.runtime_command is not None
    assert environment.runtime_command[0] == "/bin/bash"
    assert any(p.endswith("python3") for p in environment.hidden_paths)
    lmi_bash = SimulationSettings(
        mode=MODE_MANAGED_INSTANCES,
        runtime=RUNTIME_BASH,
        sink="emf",
        fleet=managed_instances_fleet(FleetConfig(), 5),
    )
    assert (lmi_bash.recording().invocations, lmi_bash.recording().classes) == (True, False)
    lmi_environment = lmi_bash.environment_settings(None)
    assert lmi_environment.extra_env["CONCURRENCY_OBSERVER_ENGINE"] == "bash"
    assert lmi_environment.runtime_command is None  # the LMI runtime, which has python3
    assert lmi_bash.log_settings().log_format == "JSON"
    with pytest.raises(ValueError, match="JSON log format only"):
        SimulationSettings(mode=MODE_MANAGED_INSTANCES, log_format="Text")
    with pytest.raises(ValueError, match="unknown mode"):
        SimulationSettings(mode="serverful")
