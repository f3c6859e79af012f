"""``experiment --local`` end to end: the study on the local fleet measures its known factor.

The fleet over-provisions by a configured factor, so the true count of every repeat is known:
the study, reading ``EnvironmentInit`` back from the embedded CloudWatch (or the EMF lines), must
find exactly that ratio at every level, and write the table, CSV, JSON and PNG.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from concurrency_observer.cli import cli

pytestmark = pytest.mark.e2e

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_local_study(output: Path, *options: str) -> str:
    """Run ``experiment --local`` with short waits; its output (exit 0 asserted)."""
    base = ["experiment", "--local", "--settle", "1.5", "--poll", "0.5", "--output", str(output)]
    result = CliRunner().invoke(cli, [*base, *options])
    assert result.exit_code == 0, result.output
    return result.output


def test_measured_ratio_equals_the_configured_factor(tmp_path: Path, rie_path: Path) -> None:
    """Levels 2 and 4, 2 repeats, factor 1.5: every repeat counts 1.5 x its level; files written."""
    output = run_local_study(
        tmp_path, "--levels", "2,4", "--repeats", "2", "--over-provisioning", "1.5"
    )
    assert "1.50" in output  # the table's ratio column
    document = json.loads((tmp_path / "study.json").read_text())
    assert [(r["level"], r["count"]) for r in document["repeats"]] == [
        (2, 3),
        (2, 3),
        (4, 6),
        (4, 6),
    ]
    assert all(r["settled"] for r in document["repeats"])
    # No load: every environment created was shut down at the removal, none ever invoked.
    assert [(r["shut_down"], r["ever_invoked"]) for r in document["repeats"]] == [
        (3, 0),
        (3, 0),
        (6, 0),
        (6, 0),
    ]
    with (tmp_path / "summary.csv").open() as summary:
        rows = list(csv.DictReader(summary))
    assert [(int(r["requested"]), float(r["ratio"])) for r in rows] == [(2, 1.5), (4, 1.5)]
    assert [float(r["ever_invoked_mean"]) for r in rows] == [0.0, 0.0]
    assert (tmp_path / "repeats.csv").read_text().count("\n") == 5  # header + 4 repeats
    assert (tmp_path / "study.png").read_bytes().startswith(PNG_MAGIC)


def test_emf_lines_count_the_same(tmp_path: Path, rie_path: Path) -> None:
    """With the emf sink the count comes from the environments' EMF lines: level 3 x 2 gives 6."""
    run_local_study(
        tmp_path, "--levels", "3", "--repeats", "1", "--over-provisioning", "2", "--sink", "emf"
    )
    document = json.loads((tmp_path / "study.json").read_text())
    assert [
        (r["level"], r["count"], r["shut_down"], r["ever_invoked"]) for r in document["repeats"]
    ] == [(3, 6, 6, 0)]
