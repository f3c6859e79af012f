"""The lean profile's lifecycle and the environment record: the exactly-once rules under lean,
the record written once, before the shutdown delivery, and a closed stdout costing the record only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from concurrency_observer import schema
from concurrency_observer.extension.config import Config
from concurrency_observer.extension.lifecycle import Lifecycle
from concurrency_observer.extension.log import Logger
from concurrency_observer.extension.records import Record
from concurrency_observer.extension.sinks import DeliveryResult

from .test_lifecycle import Clock, RecordingSink


def lean_lifecycle(
    sink: RecordingSink | StdoutCheckingSink, environ: dict[str, str] | None = None
) -> tuple[Lifecycle, Clock, list[str]]:
    """A lifecycle with the default profile, started at monotonic 100 / wall 1700000000."""
    environ = {
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "CONCURRENCY_OBSERVER_SINK": "emf",
        **(environ or {}),
    }
    config, warnings = Config.from_environ(environ)
    assert not warnings
    lines: list[str] = []
    clock = Clock(100.0)
    lifecycle = Lifecycle(
        config,
        sink,
        Logger("INFO", lines.append),
        started_wall=1700000000.0,
        started_mono=100.0,
        clock=clock,
        wall_clock=lambda: 1700000000.0 + clock.now - 100.0,
    )
    return lifecycle, clock, lines


def delta(record: Record) -> tuple[str, float, float]:
    """(kind, timestamp, EnvironmentDelta) of a lean record, which has exactly that one metric."""
    (metric,) = record.metrics
    assert metric.name == schema.ENVIRONMENT_DELTA
    assert metric.dimension_sets == (("FunctionName", "InitType"),)
    assert dict(record.dimensions) == {"FunctionName": "fn", "InitType": "on-demand"}
    return record.kind, record.timestamp, metric.value


def records_in(out: str) -> list[dict[str, object]]:
    """The environment record lines in captured stdout."""
    return [json.loads(line) for line in out.splitlines() if '"concurrencyObserver"' in line]


def test_config_reads_the_profile() -> None:
    """lean by default, full on request, any other value: one warning and lean."""
    assert Config.from_environ({})[0].metrics == "lean"
    assert Config.from_environ({"CONCURRENCY_OBSERVER_METRICS": " Full "})[0].metrics == "full"
    environ = {"CONCURRENCY_OBSERVER_SINK": "emf", "CONCURRENCY_OBSERVER_METRICS": "all"}
    config, warnings = Config.from_environ(environ)
    assert config.metrics == "lean"
    assert warnings == [
        "CONCURRENCY_OBSERVER_METRICS='all' is not one of lean, full; using lean",
    ]


def test_lean_init_then_shutdown(capsys: pytest.CaptureFixture[str]) -> None:
    """+1 at init, -1 at shutdown, each delivered once; one record with the environment's facts."""
    sink = RecordingSink()
    lifecycle, clock, _lines = lean_lifecycle(sink)
    lifecycle.deliver_init()
    for at in (101.0, 102.0, 104.0):
        clock.now = at
        lifecycle.on_invoke()
    clock.now = 110.0
    lifecycle.shutdown("spindown", 111.0)
    lifecycle.shutdown("sigterm", 111.0)  # SIGTERM after SHUTDOWN: nothing more
    assert [[delta(r) for r in records] for records, _ in sink.calls] == [
        [("init", 1700000000.0, 1)],
        [("shutdown", 1700000010.0, -1)],
    ]
    (record,) = records_in(capsys.readouterr().out)
    assert record["environmentId"] == lifecycle.environment_id
    assert (record["invocations"], record["firstInvoke"]) == (3, "prompt")
    assert (record["lifetimeMs"], record["idleMs"], record["timeToFirstInvokeMs"]) == (
        10000.0,
        6000.0,
        1000.0,
    )
    assert (record["initTime"], record["shutdownTime"]) == (1700000000000, 1700000010000)
    assert record["metrics"] == "lean"


def test_lean_init_not_delivered_goes_with_the_shutdown_stamped_at_init() -> None:
    """A failed +1 is sent again at shutdown with its init timestamp, once, beside the -1."""
    sink = RecordingSink(failing=True)
    lifecycle, clock, _lines = lean_lifecycle(sink)
    lifecycle.deliver_init()
    sink.failing = False
    clock.now = 130.0
    lifecycle.shutdown("spindown", 131.0)
    (records, _deadline) = sink.calls[-1]
    assert [delta(r) for r in records] == [
        ("init", 1700000000.0, 1),
        ("shutdown", 1700000030.0, -1),
    ]


class StdoutCheckingSink(RecordingSink):
    """Notes, at each delivery, how many environment records stdout holds already."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        super().__init__()
        self.capsys = capsys
        self.records_seen: list[int] = []
        self.out = ""

    def deliver(self, records: Sequence[Record], deadline: float) -> DeliveryResult:
        self.out += self.capsys.readouterr().out
        self.records_seen.append(len(records_in(self.out)))
        return super().deliver(records, deadline)


def test_the_record_is_out_before_the_shutdown_delivery(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The record is on stdout when the shutdown delivery: slow CloudWatch can't cost it."""
    sink = StdoutCheckingSink(capsys)
    lifecycle, clock, _lines = lean_lifecycle(sink)
    lifecycle.deliver_init()
    clock.now = 105.0
    lifecycle.shutdown("spindown", 106.0)
    assert sink.records_seen == [0, 1]


def test_a_closed_stdout_costs_the_record_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """stdout closed: one warning line, and the shutdown metric is still delivered."""

    class Closed:
        def write(self, _text: str) -> int:
            raise ValueError("I/O operation on closed file.")

        def flush(self) -> None:
            raise ValueError("I/O operation on closed file.")

    monkeypatch.setattr("sys.stdout", Closed())
    sink = RecordingSink()
    lifecycle, clock, lines = lean_lifecycle(sink)
    lifecycle.deliver_init()
    clock.now = 105.0
    lifecycle.shutdown("spindown", 106.0)
    assert [delta(r)[2] for records, _ in sink.calls for r in records] == [1, -1]
    warnings = [line for line in lines if " WARNING " in line]
    assert len(warnings) == 1
    assert "environment record not written (cannot write to stdout" in warnings[0]


def test_full_profile_writes_the_record_too(capsys: pytest.CaptureFixture[str]) -> None:
    """full: the six metrics as before, and the same record, saying full."""
    sink = RecordingSink()
    lifecycle, clock, _lines = lean_lifecycle(sink, {"CONCURRENCY_OBSERVER_METRICS": "full"})
    lifecycle.deliver_init()
    clock.now = 105.0
    lifecycle.shutdown("spindown", 106.0)
    names = [m.name for records, _ in sink.calls for r in records for m in r.metrics]
    assert names[0] == schema.ENVIRONMENT_INIT
    assert schema.ENVIRONMENT_DELTA not in names
    (record,) = records_in(capsys.readouterr().out)
    assert (record["metrics"], record["firstInvoke"], record["invocations"]) == ("full", "never", 0)


def test_every_lifecycle_draws_its_own_environment_id() -> None:
    """Two lifecycles (a SnapStart restore starts a new one): two different 16-hex-digit ids."""
    first, _, _ = lean_lifecycle(RecordingSink())
    second, _, _ = lean_lifecycle(RecordingSink())
    assert first.environment_id != second.environment_id
    for environment_id in (first.environment_id, second.environment_id):
        assert len(environment_id) == 16
        assert int(environment_id, 16) >= 0


def test_the_record_modules_are_not_imported_at_cold_start() -> None:
    """Importing what init runs (main, session, lifecycle, both sinks) loads no record module."""
    code = (
        "import sys\n"
        "import concurrency_observer.extension.main\n"
        "import concurrency_observer.extension.lifecycle\n"
        "import concurrency_observer.extension.sinks.emf\n"
        "import concurrency_observer.extension.sinks.cloudwatch\n"
        "names = ('environment_line', 'environment_record')\n"
        "print(sorted(m for m in sys.modules if m.endswith(names)))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(schema.__file__).resolve().parents[1],  # this checkout's package first
    ).stdout
    assert output.strip() == "[]"
