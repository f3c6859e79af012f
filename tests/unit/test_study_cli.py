"""``concurrency-observer experiment``: the guards that run before any AWS call, and the outputs."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from concurrency_observer.cli import cli
from concurrency_observer.errors import UserError
from concurrency_observer.study.clock import ManualClock
from concurrency_observer.study.plan import StudyPlan
from tests.unit.study.test_study import FakeFleet, run_study

BASE = ["experiment", "--function", "orders", "--alias", "live", "--region", "us-east-1"]


def test_local_refuses_aws_options_and_oversized_levels() -> None:
    """--local with --function, or a level the local fleet cannot hold, is a one-line error."""
    result = CliRunner().invoke(cli, [*BASE, "--levels", "5", "--local"])
    assert isinstance(result.exception, UserError)
    assert "drop --function" in str(result.exception)
    result = CliRunner().invoke(
        cli, ["experiment", "--local", "--levels", "40", "--over-provisioning", "2"]
    )
    assert isinstance(result.exception, UserError)
    assert "at most 60" in str(result.exception)


def test_refuses_without_yes_when_stdin_is_not_a_terminal(tmp_path: Path) -> None:
    """Without a terminal to confirm the cost, only --yes starts a billed run."""
    result = CliRunner().invoke(cli, [*BASE, "--levels", "5", "--output", str(tmp_path)])
    assert isinstance(result.exception, UserError)
    assert "pass --yes" in str(result.exception)
    assert not list(tmp_path.iterdir())


def test_bad_levels_are_one_line_errors() -> None:
    """A level that is not a number is named in the error."""
    result = CliRunner().invoke(cli, [*BASE, "--levels", "5,x"])
    assert isinstance(result.exception, UserError)
    assert "'x' is not a whole number" in str(result.exception)


def test_refuses_a_directory_holding_another_study(tmp_path: Path) -> None:
    """Rerunning into the same directory with other levels is refused, naming what differs."""
    identity = {"function": "orders", "alias": "live", "region": "us-east-1", "namespace": "auto"}
    run_study(FakeFleet(ManualClock()), tmp_path, StudyPlan(identity, (5,), 1, settle=180))
    result = CliRunner().invoke(
        cli, [*BASE, "--levels", "5,10", "--repeats", "1", "--output", str(tmp_path), "--yes"]
    )
    assert isinstance(result.exception, UserError)
    assert "other parameters (levels differ)" in str(result.exception)


def test_a_finished_study_only_writes_its_outputs(tmp_path: Path) -> None:
    """A finished study in --output prints its table and writes the files, with no AWS call."""
    identity = {"function": "orders", "alias": "live", "region": "us-east-1", "namespace": "auto"}
    plan = StudyPlan(identity, (5, 10), 2, settle=180)
    run_study(FakeFleet(ManualClock(), factor=1.5), tmp_path, plan)
    result = CliRunner().invoke(
        cli, [*BASE, "--levels", "5,10", "--repeats", "2", "--output", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "already measured" in result.output
    assert "1.50" in result.output  # the ratio column
    for name in ("summary.csv", "repeats.csv", "study.json", "study.png"):
        assert (tmp_path / name).stat().st_size > 0
