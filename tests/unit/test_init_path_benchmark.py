"""benchmarks/init_path.py's arithmetic: round-paired medians and the stand-in target."""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.init_path import Sample, paired, summarize, warm_p50


def samples(case: str, inits: Sequence[float], warm: float = 5.0) -> list[Sample]:
    """One sample of ``case`` per round with the given init durations."""
    return [
        Sample("python", case, index, init_ms=init, cold_ms=init + 5, warm_ms=[warm, warm + 1])
        for index, init in enumerate(inits)
    ]


def test_added_figures_are_paired_round_by_round() -> None:
    """Each round's case minus that round's none; a failed round drops out of both."""
    runs = samples("none", [100, 200, 300]) + samples("emf", [110, 220, 330])
    runs[4].errors.append("failed")  # emf's round 1
    assert sorted(paired(runs, "python", "emf", "init_ms")) == [10, 30]
    assert warm_p50(runs, "python", "emf") == [0.0, 0.0]


def test_the_target_is_the_standins_median_plus_three_ms() -> None:
    """A case of ours passes within the stand-in's median + 3 ms, and fails beyond it."""
    cases = {"standin": [105, 205, 305], "default": [108, 208, 308], "emf": [109, 209, 310]}
    runs = samples("none", [100, 200, 300])
    for case, inits in cases.items():
        runs += samples(case, inits)
    rows, held = summarize(runs, ["python"])
    by_case = {row["case"]: row for row in rows}
    assert by_case["standin"]["added_init_ms"] == 5
    assert (by_case["default"]["added_init_ms"], by_case["default"]["target"]) == (8, True)
    assert (by_case["emf"]["added_init_ms"], by_case["emf"]["target"]) == (9, False)
    assert by_case["floor"]["rounds"] == 0  # not run: no figure, no verdict
    assert by_case["floor"]["target"] is None
    assert held is False
