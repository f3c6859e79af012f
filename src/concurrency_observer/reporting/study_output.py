"""The study's outputs: the sample's table (rich), CSV and JSON with every repeat, and a PNG chart.

Files written into the study's output directory:

    summary.csv   requested, repeats, actual_mean, stdev, min, max, ratio, shut_down_mean,
                  ever_invoked_mean (one row per level)
    repeats.csv   level, repeat, count, ratio, allocated, ready_seconds, settle_seconds, settled,
                  started_at, shut_down, ever_invoked (one row per repeat)

``shut_down``/``ever_invoked``: the provisioned environments of the repeat seen shut down after
the removal, and of those the ones ever invoked (``EnvironmentShutdown`` by ``FirstInvoke``
prompt or delayed): PC environments created against those ever invoked. Empty when not read.
    study.json    {"parameters", "summary", "repeats"}: the same figures as the two CSV files
    study.png     actual against requested: mean and stdev bars, every repeat, the 1:1 line
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from rich.table import Table

from concurrency_observer.study.state import RepeatResult, StudyState
from concurrency_observer.study.summary import LevelSummary, summarize

SUMMARY_CSV: Final = "summary.csv"
REPEATS_CSV: Final = "repeats.csv"
STUDY_JSON: Final = "study.json"
STUDY_PNG: Final = "study.png"

SUMMARY_FIELDS: Final = (
    "requested",
    "repeats",
    "actual_mean",
    "stdev",
    "min",
    "max",
    "ratio",
    "shut_down_mean",
    "ever_invoked_mean",
)
REPEAT_FIELDS: Final = (
    "level",
    "repeat",
    "count",
    "ratio",
    "allocated",
    "ready_seconds",
    "settle_seconds",
    "settled",
    "started_at",
    "shut_down",
    "ever_invoked",
)


@dataclass(frozen=True)
class StudyOutputs:
    """The files one call to ``write_study_outputs`` wrote."""

    summary_csv: Path
    repeats_csv: Path
    json: Path
    png: Path

    def all(self) -> tuple[Path, ...]:
        """Every file, in a stable order."""
        return (self.summary_csv, self.repeats_csv, self.json, self.png)


def summary_row(summary: LevelSummary) -> dict[str, Any]:
    """One level as plain data (full precision; ``stdev`` None below 2 repeats)."""
    return {
        "requested": summary.requested,
        "repeats": summary.repeats,
        "actual_mean": summary.mean,
        "stdev": summary.stdev,
        "min": summary.minimum,
        "max": summary.maximum,
        "ratio": summary.ratio,
        "shut_down_mean": summary.shut_down_mean,
        "ever_invoked_mean": summary.invoked_mean,
    }


def repeat_row(result: RepeatResult) -> dict[str, Any]:
    """One repeat as plain data, with its ratio."""
    row = asdict(result)
    row["ever_invoked"] = row.pop("invoked")
    return {**row, "ratio": result.ratio}


def summary_table(summaries: Sequence[LevelSummary], title: str | None = None) -> Table:
    """The sample's table: requested | actual mean | stdev | min | max | ratio, and, when the
    usage was read, shut down and ever invoked (means over the repeats)."""
    usage = any(s.invoked_mean is not None for s in summaries)
    table = Table(title=title)
    table.add_column("requested", justify="right")
    table.add_column("actual mean", justify="right")
    table.add_column("stdev", justify="right")
    table.add_column("min", justify="right")
    table.add_column("max", justify="right")
    table.add_column("ratio", justify="right")
    if usage:
        table.add_column("shut down", justify="right")
        table.add_column("ever invoked", justify="right")
    for s in summaries:
        row = [
            str(s.requested),
            f"{s.mean:.1f}",
            "-" if s.stdev is None else f"{s.stdev:.1f}",
            str(s.minimum),
            str(s.maximum),
            f"{s.ratio:.2f}",
        ]
        if usage:
            row += [_mean(s.shut_down_mean), _mean(s.invoked_mean)]
        table.add_row(*row)
    return table


def _mean(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def study_document(state: StudyState) -> dict[str, Any]:
    """The JSON document: parameters, one summary row per level and every repeat."""
    return {
        "parameters": state.parameters,
        "summary": [summary_row(s) for s in summarize(state.results)],
        "repeats": [repeat_row(r) for r in state.results],
    }


def _write_csv(path: Path, fields: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if row[key] is None else row[key] for key in fields})


def write_chart(
    path: Path, summaries: Sequence[LevelSummary], results: Sequence[RepeatResult]
) -> None:
    """Actual against requested: mean with stdev error bars, each repeat as a dot, the 1:1 line."""
    # matplotlib costs about a second to import: only a run that writes a chart pays for it.
    # The Agg canvas without pyplot, as reporting/chart.py draws: no global backend or figure.
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    figure = Figure(figsize=(7, 5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    requested = [s.requested for s in summaries]
    top = max([*requested, *(r.count for r in results), 1])
    axes.plot([0, top], [0, top], linestyle="--", color="grey", label="1:1 (as requested)")
    axes.scatter(
        [r.level for r in results],
        [r.count for r in results],
        s=14,
        alpha=0.5,
        color="tab:blue",
        label="each repeat",
    )
    axes.errorbar(
        requested,
        [s.mean for s in summaries],
        yerr=[s.stdev or 0.0 for s in summaries],
        fmt="o",
        color="tab:red",
        capsize=4,
        label="mean ± stdev",
    )
    axes.set_xlabel("provisioned concurrency requested")
    axes.set_ylabel("environments initialized (EnvironmentInit)")
    axes.set_title("Environments initialized for provisioned concurrency")
    axes.set_xlim(left=0)
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, format="png")


def write_study_outputs(directory: Path, state: StudyState) -> StudyOutputs:
    """Write the CSV, JSON and PNG files of ``state`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    document = study_document(state)
    outputs = StudyOutputs(
        summary_csv=directory / SUMMARY_CSV,
        repeats_csv=directory / REPEATS_CSV,
        json=directory / STUDY_JSON,
        png=directory / STUDY_PNG,
    )
    _write_csv(outputs.summary_csv, SUMMARY_FIELDS, document["summary"])
    _write_csv(outputs.repeats_csv, REPEAT_FIELDS, document["repeats"])
    outputs.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    write_chart(outputs.png, summarize(state.results), state.results)
    return outputs
