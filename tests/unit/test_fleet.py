"""The local control plane on fake environments: routing, scale-out, throttling, idle, close."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from concurrency_observer import schema
from concurrency_observer.errors import UserError
from concurrency_observer.local.fleet import (
    WARMUP_PAYLOAD,
    Fleet,
    FleetConfig,
    FleetError,
    Outcome,
)

PC = schema.INIT_PROVISIONED
OD = schema.INIT_ON_DEMAND


class FakeEnvironment:
    """Records what the fleet does; an invocation ``{"hold": True}`` blocks until released.

    A held init (``hold_init``) keeps its payload aside: ``release_init`` delivers it.
    """

    def __init__(self, name: str, init_type: str, *, fail_start: bool = False) -> None:
        self.name = name
        self.init_type = init_type
        self.fail_start = fail_start
        self.started = False
        self.payloads: list[object] = []
        self.shutdowns = 0
        self.killed = False
        self.release = threading.Event()
        self.entered = threading.Event()
        self.held: object | None = None

    def hold_init(self, payload: object = None) -> None:
        self.held = payload

    def release_init(self) -> object:
        self.payloads.append(self.held)
        return {"ok": True}

    def start(self) -> object:
        if self.fail_start:
            raise UserError(f"{self.name} cannot start")
        self.started = True
        return self

    def invoke(self, payload: object = None) -> object:
        self.payloads.append(payload)
        self.entered.set()
        if isinstance(payload, dict) and payload.get("hold"):
            self.release.wait(5)
        return {"ok": True}

    def shutdown(self) -> object:
        self.shutdowns += 1
        return None

    def kill(self) -> None:
        self.killed = True


class FakeFactory:
    """Makes ``FakeEnvironment``s and remembers them in order."""

    def __init__(self, fail_start: bool = False) -> None:
        self.made: list[FakeEnvironment] = []
        self.fail_start = fail_start

    def __call__(self, name: str, init_type: str) -> FakeEnvironment:
        environment = FakeEnvironment(name, init_type, fail_start=self.fail_start)
        self.made.append(environment)
        return environment


class FakeClock:
    """Monotonic seconds that only move when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def factory() -> FakeFactory:
    """A factory of fake environments."""
    return FakeFactory()


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test moves."""
    return FakeClock()


@pytest.fixture
def fleet(factory: FakeFactory, clock: FakeClock) -> Iterator[Fleet]:
    """A fleet of at most 4 fake environments, idle timeout 5 s, reaped only when asked."""
    config = FleetConfig(max_environments=4, idle_timeout=5.0, shutdown_gap=0.0)
    with Fleet(factory, config, clock=clock, reaper=False) as instance:
        yield instance


def hold(fleet: Fleet) -> tuple[threading.Thread, list[object]]:
    """Start an invocation that keeps its environment busy until its ``release`` is set."""
    results: list[object] = []
    thread = threading.Thread(target=lambda: results.append(fleet.invoke({"hold": True})))
    thread.start()
    return thread, results


def wait_busy(fleet: Fleet, count: int) -> None:
    """Wait until ``count`` environments are busy."""
    deadline = time.monotonic() + 5
    while fleet.snapshot().busy < count:
        assert time.monotonic() < deadline, "environments never became busy"
        time.sleep(0.005)


def test_provisioned_environments_are_initialized_held_and_released_on_first_use(
    fleet: Fleet, factory: FakeFactory
) -> None:
    """provision(2) initializes two held environments; the first invocation there releases one."""
    assert fleet.provision(2) == 2
    assert [e.init_type for e in factory.made] == [PC, PC]
    assert all(e.held == WARMUP_PAYLOAD and e.payloads == [] for e in factory.made)
    truth = fleet.snapshot()
    assert truth.started == {PC: 2}
    assert truth.invocations == {}
    assert (truth.held, truth.warmups) == (2, 0)
    assert fleet.provisioned_ready() == 2
    fleet.invoke({"n": 1})
    assert factory.made[0].payloads == [WARMUP_PAYLOAD, {"n": 1}]
    truth = fleet.snapshot()
    assert truth.invocations == {PC: 2}
    assert (truth.held, truth.warmups, truth.served) == (1, 1, 1)


def test_over_provisioning_brings_up_ceil_of_factor(factory: FakeFactory) -> None:
    """With factor 1.5, 3 requested bring up ceil(4.5) = 5 environments; 2 x 1.1 gives 3."""
    config = FleetConfig(max_environments=10, over_provisioning=1.5, shutdown_gap=0.0)
    assert FleetConfig(over_provisioning=1.1).provisioned_environments(2) == 3
    assert FleetConfig(over_provisioning=1.5).provisioned_environments(2) == 3
    with Fleet(factory, config, reaper=False) as fleet:
        assert fleet.provision(3) == 5
        assert fleet.snapshot().started == {PC: 5}


def test_provisioning_beyond_the_maximum_is_refused(fleet: Fleet, factory: FakeFactory) -> None:
    """More provisioned environments than --max-environments is an error, and nothing starts."""
    with pytest.raises(FleetError, match="max-environments"):
        fleet.provision(5)
    assert factory.made == []


def test_invocations_go_to_provisioned_first(
    fleet: Fleet, factory: FakeFactory, clock: FakeClock
) -> None:
    """An idle provisioned environment serves before an on-demand one used more recently."""
    fleet.provision(1)
    provisioned, _ = hold(fleet)
    wait_busy(fleet, 1)
    on_demand, _ = hold(fleet)
    wait_busy(fleet, 2)
    factory.made[0].release.set()
    provisioned.join()
    clock.now += 1
    factory.made[1].release.set()
    on_demand.join()
    outcome = fleet.invoke({"n": 3})
    assert outcome.outcome is Outcome.SERVED
    assert outcome.init_type == PC
    assert not outcome.cold
    assert factory.made[0].payloads[-1] == {"n": 3}
    assert len(factory.made) == 2


def test_scale_out_when_every_environment_is_busy(fleet: Fleet, factory: FakeFactory) -> None:
    """With the provisioned environment busy, the next invocation cold-starts an on-demand one."""
    fleet.provision(1)
    thread, _ = hold(fleet)
    wait_busy(fleet, 1)
    outcome = fleet.invoke({"sleep_ms": 0})
    factory.made[0].release.set()
    thread.join()
    assert outcome.outcome is Outcome.SERVED
    assert outcome.cold
    assert outcome.init_type == OD
    assert [e.init_type for e in factory.made] == [PC, OD]
    assert fleet.snapshot().started == {PC: 1, OD: 1}


def test_throttled_at_the_maximum(factory: FakeFactory) -> None:
    """At max_environments busy, an invocation is throttled at once and no environment is made."""
    config = FleetConfig(max_environments=2, shutdown_gap=0.0)
    with Fleet(factory, config, reaper=False) as fleet:
        threads = [hold(fleet)[0] for _ in range(2)]
        wait_busy(fleet, 2)
        outcome = fleet.invoke()
        for environment in factory.made:
            environment.release.set()
        for thread in threads:
            thread.join()
        truth = fleet.snapshot()
    assert outcome.outcome is Outcome.THROTTLED
    assert len(factory.made) == 2
    assert truth.throttled == 1
    assert truth.served == 2


def test_most_recently_used_on_demand_environment_is_reused(
    fleet: Fleet, factory: FakeFactory, clock: FakeClock
) -> None:
    """Of two idle on-demand environments, the one used last serves: the other can idle out."""
    first, _ = hold(fleet)
    wait_busy(fleet, 1)
    second, _ = hold(fleet)
    wait_busy(fleet, 2)
    factory.made[0].release.set()
    first.join()
    clock.now += 1
    factory.made[1].release.set()
    second.join()
    fleet.invoke({"n": 3})
    assert factory.made[1].payloads[-1] == {"n": 3}
    assert factory.made[0].payloads == [{"hold": True}]


def test_idle_on_demand_environments_are_shut_down_after_the_timeout(
    fleet: Fleet, factory: FakeFactory, clock: FakeClock
) -> None:
    """reap_idle stops on-demand environments idle for the timeout, never provisioned ones."""
    fleet.provision(1)
    thread, _ = hold(fleet)
    wait_busy(fleet, 1)
    fleet.invoke()  # an on-demand environment, since the provisioned one is busy
    factory.made[0].release.set()
    thread.join()
    clock.now += 4.9
    assert fleet.reap_idle() == 0
    clock.now += 0.1
    assert fleet.reap_idle() == 1
    fleet.wait_for_shutdowns()
    truth = fleet.snapshot()
    assert factory.made[1].shutdowns == 1
    assert factory.made[0].shutdowns == 0
    assert truth.idle_shutdowns == 1
    assert truth.stopped == {OD: 1}
    assert truth.live == {PC: 1}


def test_close_shuts_every_environment_down_once(fleet: Fleet, factory: FakeFactory) -> None:
    """close() stops each environment exactly once, and the truth balances: started == stopped."""
    fleet.provision(2)
    threads = [hold(fleet)[0] for _ in range(3)]
    wait_busy(fleet, 3)
    for environment in factory.made:
        environment.release.set()
    for thread in threads:
        thread.join()
    fleet.close()
    fleet.close()
    truth = fleet.snapshot()
    assert [e.shutdowns for e in factory.made] == [1] * len(factory.made)
    assert truth.stopped == truth.started
    assert truth.live_total == 0
    assert fleet.invoke().outcome is Outcome.FAILED


def test_a_failed_start_fails_the_invocation_and_is_not_counted_as_started() -> None:
    """An environment that cannot start: the invocation fails, the error is kept, no init."""
    factory = FakeFactory(fail_start=True)
    with Fleet(factory, FleetConfig(shutdown_gap=0.0), reaper=False) as fleet:
        outcome = fleet.invoke()
        truth = fleet.snapshot()
    assert outcome.outcome is Outcome.FAILED
    assert truth.failed == 1
    assert truth.started == {}
    assert "cannot start" in truth.errors[0]
    assert factory.made[0].killed


def test_removing_provisioned_concurrency_stops_them(fleet: Fleet, factory: FakeFactory) -> None:
    """provision(0) after provision(2) shuts both provisioned environments down."""
    fleet.provision(2)
    assert fleet.provisioned_ready() == 2
    assert fleet.provision(0) == 0
    assert [e.shutdowns for e in factory.made] == [1, 1]
    assert fleet.snapshot().stopped == {PC: 2}


def test_close_does_not_wait_forever_for_a_hung_invocation(
    fleet: Fleet, factory: FakeFactory
) -> None:
    """An invocation outliving the in-flight timeout: its environment stops once, counted once."""
    thread, results = hold(fleet)
    wait_busy(fleet, 1)
    fleet.close(inflight_timeout=0.1)
    factory.made[0].release.set()
    thread.join()
    truth = fleet.snapshot()
    assert factory.made[0].shutdowns == 1
    assert truth.stopped == {OD: 1}
    assert truth.started == {OD: 1}
    assert len(results) == 1
