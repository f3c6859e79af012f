"""The study engine against an in-memory control plane: figures, waits, resume and restore."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from concurrency_observer.study.clock import ManualClock
from concurrency_observer.study.errors import StudyError
from concurrency_observer.study.loop import Study
from concurrency_observer.study.plan import StudyPlan, parse_levels
from concurrency_observer.study.ports import (
    ProgressCallback,
    ProvisioningStatus,
    ReadyResult,
    Usage,
    WaitProgress,
)
from concurrency_observer.study.state import STATE_FILE, StateStore, StudyState
from concurrency_observer.study.summary import summarize
from concurrency_observer.study.waits import (
    poll_until_ready,
    wait_for_settled_count,
    wait_for_shutdowns,
)


class FakeFleet:
    """A control plane and a metric store in one: ``factor`` environments per one requested.

    Each put initializes ``round(level * factor) + extra[n]`` environments at once (``n`` is the
    put's index); half of them become countable ``delay`` s later, the rest ``2 * delay`` s later,
    as CloudWatch data points do. ``interrupt_on_put`` raises KeyboardInterrupt on that put.
    """

    description = "fake:live"
    resolution_seconds = 0.0

    def __init__(
        self,
        clock: ManualClock,
        *,
        factor: float = 2.0,
        extra: Sequence[int] = (),
        delay: float = 60.0,
        ready_after: float = 30.0,
        config: int | None = None,
        interrupt_on_put: int | None = None,
    ) -> None:
        self.clock = clock
        self.factor = factor
        self.extra = list(extra)
        self.delay = delay
        self.ready_after = ready_after
        self.config = config
        self.interrupt_on_put = interrupt_on_put
        self.puts: list[int] = []
        self.inits: list[tuple[datetime, datetime]] = []  # (initialized at, countable from)

    def read_config(self) -> int | None:
        """The configured level."""
        return self.config

    def set_provisioned(self, level: int) -> None:
        """Configure ``level`` and initialize the environments."""
        if self.interrupt_on_put is not None and len(self.puts) == self.interrupt_on_put:
            raise KeyboardInterrupt
        extra = self.extra[len(self.puts)] if len(self.puts) < len(self.extra) else 0
        self.puts.append(level)
        self.config = level
        now = self.clock.now()
        total = round(level * self.factor) + extra
        for index in range(total):
            lag = self.delay if index < total // 2 else 2 * self.delay
            self.inits.append((now, now + timedelta(seconds=lag)))

    def wait_ready(self, level: int, timeout: float, on_progress: ProgressCallback) -> ReadyResult:
        """READY after ``ready_after`` seconds."""
        self.clock.sleep(self.ready_after)
        on_progress(WaitProgress("provisioning", level, level))
        return ReadyResult(level, self.ready_after)

    def remove(self) -> None:
        """No configuration."""
        self.config = None

    def restore(self, original: int | None) -> str:
        """Put ``original`` back."""
        self.config = original
        return f"restored {original}"

    def count(self, since: datetime) -> int:
        """Environments initialized since ``since`` and already countable."""
        now = self.clock.now()
        return sum(1 for at, countable in self.inits if at >= since and countable <= now)


class Recorder:
    """A listener that keeps everything."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.updates: list[WaitProgress] = []

    def note(self, message: str) -> None:
        """Keep the note."""
        self.notes.append(message)

    def progress(self, update: WaitProgress) -> None:
        """Keep the update."""
        self.updates.append(update)


def ignore(update: WaitProgress) -> None:
    """Drop a progress update."""


def make_plan(levels: tuple[int, ...] = (10, 50), repeats: int = 3, **waits: float) -> StudyPlan:
    """A plan with short waits."""
    settings = {"settle": 60.0, "poll_interval": 15.0, "cooldown": 30.0, **waits}
    return StudyPlan({"function": "fake", "alias": "live"}, levels, repeats, **settings)


def run_study(
    fleet: FakeFleet, tmp_path: Path, plan: StudyPlan | None = None
) -> tuple[StudyState, Recorder]:
    """Run a study on ``fleet`` with its state in ``tmp_path``."""
    recorder = Recorder()
    study = Study(
        plan or make_plan(), fleet, fleet, StateStore(tmp_path), recorder, clock=fleet.clock
    )
    return study.run(), recorder


def test_over_provisioning_by_two_gives_ratio_two(tmp_path: Path) -> None:
    """A fleet that starts twice the environments asked for measures a ratio of 2 at every level."""
    fleet = FakeFleet(ManualClock(), factor=2.0)
    state, _ = run_study(fleet, tmp_path)
    rows = summarize(state.results)
    assert [row.requested for row in rows] == [10, 50]
    assert [row.ratio for row in rows] == [2.0, 2.0]
    assert [row.mean for row in rows] == [20.0, 100.0]
    assert [row.stdev for row in rows] == [0.0, 0.0]
    assert fleet.puts == [10, 10, 10, 50, 50, 50]


def test_table_figures_equal_hand_computed_ones(tmp_path: Path) -> None:
    """Mean, stdev, min, max and ratio of uneven repeats match figures worked out by hand."""
    # Level 10 counts 20, 21, 23; level 50 counts 100, 104, 100.
    fleet = FakeFleet(ManualClock(), factor=2.0, extra=[0, 1, 3, 0, 4, 0])
    state, _ = run_study(fleet, tmp_path)
    assert [r.count for r in state.results] == [20, 21, 23, 100, 104, 100]
    low, high = summarize(state.results)
    assert low.mean == pytest.approx(64 / 3)
    # deviations -4/3, -1/3, 5/3: squares sum to 42/9, over n-1 = 2 gives 7/3
    assert low.stdev == pytest.approx(math.sqrt(7 / 3))
    assert (low.minimum, low.maximum) == (20, 23)
    assert low.ratio == pytest.approx(64 / 30)
    assert high.mean == pytest.approx(304 / 3)
    # deviations -4/3, 8/3, -4/3: squares sum to 96/9, over 2 gives 16/3
    assert high.stdev == pytest.approx(math.sqrt(16 / 3))
    assert high.ratio == pytest.approx(304 / 150)


def test_a_single_repeat_has_no_stdev(tmp_path: Path) -> None:
    """With one repeat per level the stdev is undefined, not zero."""
    state, _ = run_study(FakeFleet(ManualClock(), factor=1.0), tmp_path, make_plan((5,), 1))
    (row,) = summarize(state.results)
    assert row.stdev is None
    assert (row.mean, row.minimum, row.maximum, row.ratio) == (5.0, 5, 5, 1.0)


def test_counts_are_recorded_only_after_they_stop_growing(tmp_path: Path) -> None:
    """Data points arriving late (after READY) are waited for: the whole count is recorded."""
    # Half the data points arrive 120 s after init, the rest 240 s after: a settle period longer
    # than that gap sees both halves.
    fleet = FakeFleet(ManualClock(), factor=2.0, delay=120.0)
    state, _ = run_study(fleet, tmp_path, make_plan(levels=(10,), repeats=1, settle=150.0))
    (result,) = state.results
    assert result.count == 20
    assert result.settled
    # READY at 30 s, the last data point countable at 240 s, then stable for the settle period
    assert result.settle_seconds == 240 + 150 - 30


def test_original_configuration_is_removed_first_and_restored(tmp_path: Path) -> None:
    """An alias that had provisioned concurrency 7 starts the study from none and ends with 7."""
    fleet = FakeFleet(ManualClock(), config=7)
    state, recorder = run_study(fleet, tmp_path, make_plan(levels=(10,), repeats=1))
    assert fleet.config == 7
    assert state.original == 7
    assert any("has provisioned concurrency 7" in note for note in recorder.notes)
    assert recorder.notes[-1] == "restored 7"


def test_configuration_is_restored_when_a_step_raises(tmp_path: Path) -> None:
    """A counter that fails mid-study still leaves the alias as it was found."""

    class BrokenCounter:
        resolution_seconds = 0.0

        def count(self, since: datetime) -> int:
            raise RuntimeError("metrics unavailable")

    fleet = FakeFleet(ManualClock(), config=3)
    study = Study(
        make_plan(), fleet, BrokenCounter(), StateStore(tmp_path), Recorder(), clock=fleet.clock
    )
    with pytest.raises(RuntimeError, match="metrics unavailable"):
        study.run()
    assert fleet.puts == [10]
    assert fleet.config == 3


def test_resume_after_an_interruption_measures_only_the_rest(tmp_path: Path) -> None:
    """Ctrl-C on the third put saves two repeats; the next run measures the other four."""
    clock = ManualClock()
    first = FakeFleet(clock, interrupt_on_put=2)
    with pytest.raises(KeyboardInterrupt):
        run_study(first, tmp_path)
    saved = json.loads((tmp_path / STATE_FILE).read_text())
    assert [(r["level"], r["repeat"]) for r in saved["results"]] == [(10, 1), (10, 2)]
    assert first.config is None

    second = FakeFleet(clock)
    state, _ = run_study(second, tmp_path)
    assert second.puts == [10, 50, 50, 50]
    assert [(r.level, r.repeat) for r in state.results] == [
        (10, 1),
        (10, 2),
        (10, 3),
        (50, 1),
        (50, 2),
        (50, 3),
    ]
    assert [r.ratio for r in state.results] == [2.0] * 6


def test_resume_restores_the_first_runs_original_not_a_leftover(tmp_path: Path) -> None:
    """After a hard kill left level 50 configured, the resumed run restores the original 4."""
    plan = make_plan()
    store = StateStore(tmp_path)
    state = store.load(plan)
    state.original, state.original_known = 4, True
    store.save(state)
    fleet = FakeFleet(ManualClock(), config=50)
    run_study(fleet, tmp_path, plan)
    assert fleet.config == 4


def test_a_finished_study_runs_nothing(tmp_path: Path) -> None:
    """Running a finished study again changes nothing on the target."""
    clock = ManualClock()
    run_study(FakeFleet(clock), tmp_path)
    again = FakeFleet(clock, config=9)
    state, recorder = run_study(again, tmp_path)
    assert again.puts == []
    assert again.config == 9
    assert len(state.results) == 6
    assert "nothing to run" in recorder.notes[0]


def test_resume_refuses_other_parameters(tmp_path: Path) -> None:
    """A saved study is only continued with the same levels, repeats and settle period."""
    run_study(FakeFleet(ManualClock()), tmp_path, make_plan(levels=(10,), repeats=1))
    with pytest.raises(StudyError, match=r"other parameters \(levels differ\)"):
        StateStore(tmp_path).load(make_plan(levels=(10, 20), repeats=1))
    with pytest.raises(StudyError, match=r"repeats, settle differ"):
        StateStore(tmp_path).load(make_plan(levels=(10,), repeats=2, settle=5.0))
    # The waits may change between runs.
    assert StateStore(tmp_path).load(make_plan(levels=(10,), repeats=1, cooldown=1.0)).results


def test_a_corrupt_state_file_is_a_clear_error(tmp_path: Path) -> None:
    """A state file that is not the study's JSON is reported with its path."""
    (tmp_path / STATE_FILE).write_text("{not json")
    with pytest.raises(StudyError, match="cannot read the saved study"):
        StateStore(tmp_path).load(make_plan())


def test_ready_polling_reports_progress_and_fails_clearly() -> None:
    """IN_PROGRESS then READY returns the allocation; FAILED carries its reason."""
    clock = ManualClock()
    statuses = iter(
        [
            ProvisioningStatus("IN_PROGRESS", 10, 3),
            ProvisioningStatus("IN_PROGRESS", 10, 8),
            ProvisioningStatus("READY", 10, 10),
        ]
    )
    seen: list[WaitProgress] = []
    result = poll_until_ready(
        lambda: next(statuses), timeout=60, interval=5, clock=clock, on_progress=seen.append
    )
    assert result == ReadyResult(10, 10.0)
    assert [u.completed for u in seen] == [3, 8, 10]
    with pytest.raises(StudyError, match="FAILED: no capacity"):
        poll_until_ready(
            lambda: ProvisioningStatus("FAILED", 10, 0, "no capacity"),
            timeout=60,
            interval=5,
            clock=clock,
            on_progress=seen.append,
        )


def test_settle_waits_for_a_stable_nonzero_count() -> None:
    """Zeros do not count as stable; the value is returned once unchanged for the settle period."""
    clock = ManualClock()
    counts = iter([0, 0, 4, 9, 9, 9, 9, 9])
    result = wait_for_settled_count(
        lambda: next(counts), settle=30, interval=10, timeout=600, clock=clock, on_progress=ignore
    )
    # 9 first seen at t=30, stable through t=60
    assert (result.count, result.seconds, result.settled) == (9, 60.0, True)


def test_settle_bound_errors_on_zero_and_flags_a_moving_count() -> None:
    """At the bound, no data is an error and a count still growing is kept but flagged."""
    with pytest.raises(StudyError, match="no EnvironmentInit"):
        wait_for_settled_count(
            lambda: 0, settle=30, interval=10, timeout=60, clock=ManualClock(), on_progress=ignore
        )
    growing = iter(range(1, 100))
    result = wait_for_settled_count(
        lambda: next(growing),
        settle=30,
        interval=10,
        timeout=60,
        clock=ManualClock(),
        on_progress=ignore,
    )
    assert (result.count, result.settled) == (7, False)


def test_plan_and_levels_are_validated() -> None:
    """Bad levels and repeats are one-line errors naming the problem."""
    assert parse_levels("10, 50,100") == (10, 50, 100)
    with pytest.raises(StudyError, match="'ten' is not a whole number"):
        parse_levels("10,ten")
    with pytest.raises(StudyError, match="'0' is not a whole number"):
        parse_levels("0")
    with pytest.raises(StudyError, match="appears twice"):
        make_plan(levels=(10, 10))
    with pytest.raises(StudyError, match="repeats"):
        make_plan(repeats=0)


def test_repeats_start_on_the_counters_minute_boundary(tmp_path: Path) -> None:
    """With a 60 s resolution, a repeat begun at 12:00:25 starts (and counts) from 12:01:00."""
    clock = ManualClock(datetime(2026, 3, 1, 12, 0, 25, tzinfo=timezone.utc))
    fleet = FakeFleet(clock)
    fleet.resolution_seconds = 60.0
    state, _ = run_study(fleet, tmp_path, make_plan(levels=(10,), repeats=1))
    assert state.results[0].started_at == "2026-03-01T12:01:00+00:00"
    assert clock.sleeps[0] == 35.0
    assert state.results[0].count == 20


def test_an_unwritable_state_directory_is_a_clear_error(tmp_path: Path) -> None:
    """A state file that cannot be written stops the study before any change, in one line."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    fleet = FakeFleet(ManualClock(), config=2)
    with pytest.raises(StudyError, match="cannot save the study state"):
        run_study(fleet, blocker / "study")
    assert (fleet.puts, fleet.config) == ([], 2)


class UsageFleet(FakeFleet):
    """``FakeFleet`` whose removal shuts its environments down, ``invoked[n]`` of them invoked.

    The shutdowns become countable ``delay`` s after the removal, as CloudWatch data points do.
    """

    def __init__(self, clock: ManualClock, invoked: Sequence[int], **options: float) -> None:
        super().__init__(clock, **options)  # type: ignore[arg-type]
        self.invoked = list(invoked)
        self.shutdowns: list[tuple[datetime, int, int]] = []  # (countable from, count, invoked)
        self._live = 0

    def set_provisioned(self, level: int) -> None:
        """Initialize as ``FakeFleet`` does, remembering how many are live."""
        before = len(self.inits)
        super().set_provisioned(level)
        self._live = len(self.inits) - before

    def remove(self) -> None:
        """Shut the live environments down."""
        super().remove()
        if self._live:
            invoked = self.invoked[len(self.shutdowns)]
            countable = self.clock.now() + timedelta(seconds=self.delay)
            self.shutdowns.append((countable, self._live, invoked))
            self._live = 0

    def usage(self, since: datetime) -> Usage:
        """Shutdowns already countable (all after ``since`` here), and those ever invoked."""
        now = self.clock.now()
        seen = [(n, i) for at, n, i in self.shutdowns if at <= now and at >= since]
        return Usage(sum(n for n, _ in seen), sum(i for _, i in seen))


def test_usage_is_read_after_each_removal_and_summarized(tmp_path: Path) -> None:
    """Created 20 per repeat at level 10; invoked 3, 5, 4: each repeat's figures and the mean."""
    clock = ManualClock()
    fleet = UsageFleet(clock, invoked=[3, 5, 4], factor=2.0)
    plan = make_plan(levels=(10,))
    study = Study(plan, fleet, fleet, StateStore(tmp_path), Recorder(), clock=clock, usage=fleet)
    state = study.run()
    assert [(r.count, r.shut_down, r.invoked) for r in state.results] == [
        (20, 20, 3),
        (20, 20, 5),
        (20, 20, 4),
    ]
    (row,) = summarize(state.results)
    assert (row.shut_down_mean, row.invoked_mean) == (20.0, 4.0)
    again = StateStore(tmp_path).load(plan)  # the saved state keeps the new fields
    assert [r.invoked for r in again.results] == [3, 5, 4]


def test_without_a_usage_counter_the_figures_stay_unknown(tmp_path: Path) -> None:
    """No usage counter: None per repeat and per level (empty in the CSV), as before."""
    state, _ = run_study(FakeFleet(ManualClock()), tmp_path, make_plan(levels=(10,), repeats=1))
    assert (state.results[0].shut_down, state.results[0].invoked) == (None, None)
    assert summarize(state.results)[0].invoked_mean is None


def test_waiting_for_shutdowns_ends_when_all_are_seen_or_at_the_bound() -> None:
    """All 4 seen at 60 s: done then; none ever seen: 0 at the 300 s bound, no error."""
    clock = ManualClock()
    began = clock.monotonic()
    seen = wait_for_shutdowns(
        lambda: 4 if clock.monotonic() - began >= 60 else 0,
        expected=4,
        settle=120.0,
        interval=15.0,
        timeout=300.0,
        clock=clock,
        on_progress=ignore,
    )
    assert (seen.count, seen.seconds, seen.settled) == (4, 60.0, True)
    never = wait_for_shutdowns(
        lambda: 0,
        expected=4,
        settle=120.0,
        interval=15.0,
        timeout=300.0,
        clock=clock,
        on_progress=ignore,
    )
    assert (never.count, never.seconds, never.settled) == (0, 300.0, False)
    some = wait_for_shutdowns(
        lambda: 3,
        expected=4,
        settle=120.0,
        interval=15.0,
        timeout=300.0,
        clock=clock,
        on_progress=ignore,
    )
    assert (some.count, some.seconds, some.settled) == (3, 120.0, True)  # stopped moving
