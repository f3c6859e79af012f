"""SnapStart, with an emulated restore: one init record per restored environment, at the restore.

Lambda runs a SnapStart function's init once, at publish, and snapshots the environment while the
extension is blocked in ``/event/next``; each restored environment resumes in that call, with no
restore event. Emulated here: the extension blocks in ``/event/next`` of a cued Extensions API;
the test moves the injected wall clock an hour ahead of the injected monotonic clock (what a
restore looks like from inside), then answers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from concurrency_observer import schema
from concurrency_observer.extension.config import Config
from concurrency_observer.extension.event_loop import run
from concurrency_observer.extension.extensions_api import ExtensionsApi
from concurrency_observer.extension.interruptions import Interruptions
from concurrency_observer.extension.log import Logger
from concurrency_observer.local import readback
from tests.faults.cued_api import CuedExtensionsApi

SNAPSHOT_WALL = 1_700_000_000.0  # when init ran, at publish
SNAPSHOT_MONO = 500.0
RESTORE_GAP = 3600.0  # the snapshot sat an hour before this restore


class Clocks:
    """The wall and monotonic clocks the extension reads, moved by the test."""

    def __init__(self) -> None:
        self.wall = SNAPSHOT_WALL
        self.mono = SNAPSHOT_MONO

    def restore(self) -> None:
        """A restore: the wall clock jumps; the monotonic clock barely moves."""
        self.wall += RESTORE_GAP
        self.mono += 0.001

    def advance(self, seconds: float) -> None:
        """Both clocks move together."""
        self.wall += seconds
        self.mono += seconds


@contextmanager
def extension(
    init_type: str, clocks: Clocks, interruptions: Interruptions, metrics: str = "full"
) -> Iterator[tuple[CuedExtensionsApi, list[int]]]:
    """run() in a thread against a cued API with the emf sink, the test's clocks and the full
    metric profile (whose values these tests read) unless ``metrics`` says otherwise."""
    outcome: list[int] = []
    with CuedExtensionsApi().running() as api:
        config, _ = Config.from_environ(
            {
                "CONCURRENCY_OBSERVER_SINK": "emf",
                "CONCURRENCY_OBSERVER_METRICS": metrics,
                "AWS_LAMBDA_RUNTIME_API": api.address,
                "AWS_LAMBDA_FUNCTION_NAME": "snappy",
                "AWS_LAMBDA_INITIALIZATION_TYPE": init_type,
            }
        )
        client = ExtensionsApi(api.address)

        def target() -> None:
            outcome.append(
                run(
                    config,
                    client,
                    "concurrency-observer",
                    Logger("DEBUG", lambda line: None),
                    interruptions,
                    started_wall=clocks.wall,
                    started_mono=clocks.mono,
                    sleep=lambda seconds: None,
                    clock=lambda: clocks.mono,
                    wall_clock=lambda: clocks.wall,
                    fallback=None,
                )
            )

        thread = threading.Thread(target=target)
        thread.start()
        try:
            yield api, outcome
        finally:
            thread.join(timeout=20)
            client.close()


def invoke() -> dict[str, object]:
    """An INVOKE event."""
    return {"eventType": "INVOKE", "requestId": "r", "deadlineMs": 1}


def shutdown(clocks: Clocks) -> dict[str, object]:
    """A SHUTDOWN due two seconds from the test's wall clock."""
    deadline = int((clocks.wall + 2) * 1000)
    return {"eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": deadline}


def documents(out: str) -> list[dict[str, Any]]:
    """The EMF documents written."""
    return readback.emf_documents(out)


def test_restore_starts_the_environment(capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing before the snapshot; the init record at the restore; durations from the restore."""
    clocks = Clocks()
    with extension(schema.INIT_SNAP_START, clocks, Interruptions()) as (api, outcome):
        assert api.wait_polling(1)  # blocked in /event/next: the snapshot is taken here
        assert documents(capsys.readouterr().out) == []  # no init record in the snapshot
        clocks.restore()
        restored_at = clocks.wall
        api.cue(invoke())
        assert api.wait_polling(2)
        clocks.advance(10.0)
        api.cue(invoke())
        assert api.wait_polling(3)
        clocks.advance(5.0)
        api.cue(shutdown(clocks))
    assert outcome == [0]
    init, ended = documents(capsys.readouterr().out)
    assert init["_aws"]["Timestamp"] == round(restored_at * 1000)
    assert init[schema.INIT_TYPE] == schema.INIT_SNAP_START
    assert init[schema.ENVIRONMENT_INIT] == 1
    assert ended[schema.ENVIRONMENT_LIFETIME] == pytest.approx(15.0, abs=0.002)  # not 3615
    assert ended[schema.ENVIRONMENT_TIME_TO_FIRST_INVOKE] == pytest.approx(0.0, abs=0.002)
    assert ended[schema.ENVIRONMENT_IDLE_TIME] == pytest.approx(5.0, abs=0.002)
    assert ended[schema.ENVIRONMENT_INVOCATIONS] == 2


def test_each_restore_is_one_environment(capsys: pytest.CaptureFixture[str]) -> None:
    """Three environments restored from one snapshot: three init and three shutdown records."""
    for _restore in range(3):
        clocks = Clocks()  # each restored process resumes from the same snapshot
        with extension(schema.INIT_SNAP_START, clocks, Interruptions()) as (api, _outcome):
            assert api.wait_polling(1)
            clocks.restore()
            api.cue(invoke())
            assert api.wait_polling(2)
            api.cue(shutdown(clocks))
    out = capsys.readouterr().out
    written = documents(out)
    assert [schema.ENVIRONMENT_INIT in d for d in written] == [True, False] * 3
    records = [json.loads(line) for line in out.splitlines() if '"environment/1"' in line]
    assert len(records) == 3
    assert len({r["environmentId"] for r in records}) == 3  # a new id at each restore
    assert {r["initTime"] for r in records} == {round((SNAPSHOT_WALL + RESTORE_GAP) * 1000)}
    assert {d["_aws"]["Timestamp"] for d in written[::2]} == {
        round((SNAPSHOT_WALL + RESTORE_GAP) * 1000)
    }


def test_sigterm_before_any_restore_still_pairs_the_records(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The snapshot's own environment stopped before any restore: one init, one shutdown."""
    clocks = Clocks()
    interruptions = Interruptions()
    with extension(schema.INIT_SNAP_START, clocks, interruptions) as (api, outcome):
        assert api.wait_polling(1)
        clocks.advance(2.0)
        # SIGTERM while blocked: delivered as the handler would be, on the waiting thread.
        interruptions.requested = True
        api.cue(500)  # the poll ends; the loop sees the request before polling again
    assert outcome == [0]
    init, ended = documents(capsys.readouterr().out)
    assert init["_aws"]["Timestamp"] == round(SNAPSHOT_WALL * 1000)
    assert ended[schema.SHUTDOWN_REASON] == "sigterm"
    assert ended[schema.ENVIRONMENT_LIFETIME] == pytest.approx(2.0, abs=0.002)


@pytest.mark.parametrize(
    "init_type", [schema.INIT_PROVISIONED, schema.INIT_MANAGED_INSTANCES, schema.INIT_ON_DEMAND]
)
def test_not_snapstart_ignores_a_wall_clock_jump(
    init_type: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not SnapStart: a clock step is no restore; the init record is stamped at init, and written
    before the first poll (on-demand: with the shutdown record)."""
    clocks = Clocks()
    with extension(init_type, clocks, Interruptions()) as (api, _outcome):
        assert api.wait_polling(1)
        written_at_init = documents(capsys.readouterr().out)
        clocks.restore()
        api.cue(invoke())
        assert api.wait_polling(2)
        api.cue(shutdown(clocks))
    at_shutdown = documents(capsys.readouterr().out)
    if init_type == schema.INIT_ON_DEMAND:
        assert written_at_init == []
        init, ended = at_shutdown
    else:
        (init,), (ended,) = written_at_init, at_shutdown
    assert init["_aws"]["Timestamp"] == round(SNAPSHOT_WALL * 1000)
    assert init[schema.ENVIRONMENT_INIT] == 1
    if init_type != schema.INIT_MANAGED_INSTANCES:  # LMI: SHUTDOWN only, no INVOKE counted
        assert ended[schema.ENVIRONMENT_TIME_TO_FIRST_INVOKE] == pytest.approx(0.001, abs=0.002)


def test_lean_restores_each_write_a_delta_pair_and_a_record_of_their_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Lean: nothing in the snapshot; per restore +1 at the restore, -1, a record, a new id."""
    ids: list[object] = []
    for _restore in range(2):
        clocks = Clocks()
        with extension(schema.INIT_SNAP_START, clocks, Interruptions(), "lean") as (api, _):
            assert api.wait_polling(1)
            assert documents(capsys.readouterr().out) == []  # nothing before the restore
            clocks.restore()
            api.cue(invoke())
            assert api.wait_polling(2)
            clocks.advance(4.0)
            api.cue(shutdown(clocks))
        out = capsys.readouterr().out
        init, ended = documents(out)
        restored_ms = round((SNAPSHOT_WALL + RESTORE_GAP) * 1000)
        assert (init[schema.ENVIRONMENT_DELTA], ended[schema.ENVIRONMENT_DELTA]) == (1, -1)
        assert init["_aws"]["Timestamp"] == restored_ms
        (record,) = [json.loads(line) for line in out.splitlines() if '"environment/1"' in line]
        assert (record["initTime"], record["initType"]) == (restored_ms, schema.INIT_SNAP_START)
        assert record["lifetimeMs"] == pytest.approx(4000.0, abs=2)  # from the restore
        assert record["invocations"] == 1
        ids.append(record["environmentId"])
    assert len(set(ids)) == 2
