"""The same cost note everywhere: each example and the README state pricing.py's figures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from concurrency_observer import pricing, schema
from concurrency_observer.cost_note import cost_figures, cost_note, full_range

REPO = Path(__file__).resolve().parents[2]
STATING_THE_COST = [
    "README.md",
    "examples/sam/README.md",
    "examples/sam/template.yaml",
    "examples/cdk/README.md",
    "examples/cdk/observer_aspect.py",
    "examples/terraform/README.md",
    "examples/terraform/main.tf",
    "examples/terraform/modules/concurrency-observer/main.tf",
    "examples/serverless/README.md",
    "examples/serverless/serverless.yml",
]


def prose(text: str) -> str:
    """The text as one line: comment markers at line starts dropped, whitespace collapsed."""
    lines = (re.sub(r"^\s*(#|//)?\s*", "", line) for line in text.splitlines())
    return " ".join(" ".join(lines).split())


@pytest.mark.parametrize("relative", STATING_THE_COST)
def test_each_place_states_every_figure(relative: str) -> None:
    """Lean per metric, the full range in metrics and dollars, the records' ingestion."""
    text = prose((REPO / relative).read_text())
    missing = [figure for figure in cost_figures() if figure not in text]
    assert missing == [], f"{relative} lacks {missing}"


def test_the_figures_come_from_pricing() -> None:
    """$0.30 a metric, 22 and 31 metrics from metric_streams, $6.60 and $9.30 from them."""
    assert f"${pricing.CUSTOM_METRIC_USD_PER_MONTH:.2f}" in cost_figures()
    assert full_range() == (22, 31)
    assert pricing.metric_streams(schema.METRICS_LEAN) == 1
    assert "$6.60–$9.30" in cost_figures()


def test_the_note_leads_with_the_profile_configured() -> None:
    """``full`` first for full, lean first for lean; an unknown profile is refused."""
    assert cost_note("full").startswith("full metrics: 22–31")
    assert cost_note("lean").startswith("lean metrics (the default)")
    with pytest.raises(ValueError, match="unknown metric profile"):
        cost_note("medium")


def test_a_missing_figure_is_caught() -> None:
    """A note with the full range changed fails the check."""
    text = prose(cost_note("lean").replace("22–31", "22–30"))
    assert [f for f in cost_figures() if f not in text] == ["22–31 custom metrics"]
