"""The study's outputs: table, CSV, JSON and PNG agree with each other and with the figures."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from rich.console import Console

from concurrency_observer.reporting.study_output import (
    summary_table,
    write_study_outputs,
)
from concurrency_observer.study.clock import ManualClock
from concurrency_observer.study.state import StudyState
from concurrency_observer.study.summary import summarize
from tests.unit.study.test_study import FakeFleet, make_plan, run_study


@pytest.fixture
def state(tmp_path: Path) -> StudyState:
    """A finished study: level 10 counts 20, 21, 23; level 50 counts 100, 104, 100."""
    fleet = FakeFleet(ManualClock(), factor=2.0, extra=[0, 1, 3, 0, 4, 0])
    result, _ = run_study(fleet, tmp_path / "state", make_plan())
    return result


def test_outputs_are_written_and_consistent(tmp_path: Path, state: StudyState) -> None:
    """CSV and JSON hold the same figures as ``summarize``; the PNG is a real PNG."""
    outputs = write_study_outputs(tmp_path / "out", state)
    document = json.loads(outputs.json.read_text())
    with outputs.summary_csv.open(newline="") as handle:
        summary_rows = list(csv.DictReader(handle))
    with outputs.repeats_csv.open(newline="") as handle:
        repeat_rows = list(csv.DictReader(handle))

    expected = summarize(state.results)
    assert [int(row["requested"]) for row in summary_rows] == [10, 50]
    for row, item, figure in zip(summary_rows, document["summary"], expected, strict=True):
        assert float(row["actual_mean"]) == pytest.approx(figure.mean)
        assert item["actual_mean"] == pytest.approx(figure.mean)
        assert float(row["stdev"]) == pytest.approx(item["stdev"])
        assert float(row["ratio"]) == pytest.approx(item["ratio"])
        assert (int(row["min"]), int(row["max"])) == (item["min"], item["max"])
    assert document["summary"][0]["stdev"] == pytest.approx(math.sqrt(7 / 3))

    assert [int(row["count"]) for row in repeat_rows] == [20, 21, 23, 100, 104, 100]
    assert [r["count"] for r in document["repeats"]] == [20, 21, 23, 100, 104, 100]
    assert [float(row["ratio"]) for row in repeat_rows] == [r["ratio"] for r in document["repeats"]]
    assert document["parameters"]["levels"] == [10, 50]

    png = outputs.png.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 10_000


def test_table_shows_the_samples_columns(state: StudyState) -> None:
    """The table has the sample's columns and the rounded figures."""
    console = Console(record=True, width=120)
    console.print(summary_table(summarize(state.results)))
    text = console.export_text()
    header = text.splitlines()[1]
    for column in ("requested", "actual mean", "stdev", "min", "max", "ratio"):
        assert column in header
    row_10 = next(line for line in text.splitlines() if line.strip("│ ").startswith("10 "))
    assert [cell.strip() for cell in row_10.strip("│").split("│")] == [
        "10",
        "21.3",
        "1.5",
        "20",
        "23",
        "2.13",
    ]


def test_created_against_ever_invoked_in_table_csv_and_json(tmp_path: Path) -> None:
    """Usage read: the table, both CSVs and the JSON show shut down and ever invoked per level."""
    from concurrency_observer.study.loop import Study
    from concurrency_observer.study.state import StateStore
    from tests.unit.study.test_study import Recorder, UsageFleet

    clock = ManualClock()
    fleet = UsageFleet(clock, invoked=[3, 5, 4], factor=2.0)
    plan = make_plan(levels=(10,))
    state = Study(
        plan, fleet, fleet, StateStore(tmp_path / "s"), Recorder(), clock=clock, usage=fleet
    ).run()
    outputs = write_study_outputs(tmp_path / "out", state)
    with outputs.summary_csv.open(newline="") as handle:
        (summary,) = list(csv.DictReader(handle))
    with outputs.repeats_csv.open(newline="") as handle:
        repeats = list(csv.DictReader(handle))
    document = json.loads(outputs.json.read_text())
    assert (float(summary["shut_down_mean"]), float(summary["ever_invoked_mean"])) == (20.0, 4.0)
    assert [(r["count"], r["shut_down"], r["ever_invoked"]) for r in repeats] == [
        ("20", "20", "3"),
        ("20", "20", "5"),
        ("20", "20", "4"),
    ]
    assert document["summary"][0]["ever_invoked_mean"] == 4.0
    assert [r["ever_invoked"] for r in document["repeats"]] == [3, 5, 4]
    console = Console(record=True, width=120)
    console.print(summary_table(summarize(state.results)))
    row = next(line for line in console.export_text().splitlines() if "20.0" in line)
    assert [cell.strip() for cell in row.strip("│").split("│")][-2:] == ["20.0", "4.0"]
