"""The benchmark's statistics: percentiles, pairing with the baseline, and the target verdicts."""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.results import (
    EMF,
    FLOOR,
    NONE,
    Sample,
    SslCost,
    evaluate,
    percentile,
    summarize,
)


@pytest.mark.parametrize("q", [0, 1, 50, 90, 99, 100])
def test_percentile_matches_numpy(q: float) -> None:
    """Linear interpolation, as numpy's default."""
    values = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6, 5.3]
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_of_nothing_is_an_error() -> None:
    """No values, no percentile."""
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def _round(
    index: int, none_init: float, floor_init: float, emf_init: float, emf_rss_kb: int = 11264
) -> list[Sample]:
    return [
        Sample(NONE, index, init_report_ms=none_init, warm_ms=[1.0, 1.0, 1.0]),
        Sample(FLOOR, index, init_report_ms=floor_init, rss_kb=10240, warm_ms=[1.1, 1.1, 1.1]),
        Sample(
            EMF,
            index,
            init_report_ms=emf_init,
            rss_kb=emf_rss_kb,
            warm_ms=[1.2, 1.2, 1.2],
            records_expected=2,
            records_delivered=2,
        ),
    ]


def test_added_figures_are_paired_with_the_same_round() -> None:
    """'added init' is the median of per-round differences, not a difference of medians."""
    samples = [
        *_round(0, none_init=70, floor_init=120, emf_init=130),
        *_round(1, none_init=100, floor_init=150, emf_init=160),
        *_round(2, none_init=80, floor_init=130, emf_init=200),
    ]
    summaries = {s.variant: s for s in summarize(samples, [NONE, FLOOR, EMF])}
    assert summaries[FLOOR].added_init_ms == 50
    assert summaries[EMF].added_init_ms == 60  # differences 60, 60, 120
    assert summaries[EMF].rss_mb == 11.0
    assert summaries[EMF].p50_overhead_ms == pytest.approx(0.2)
    assert summaries[EMF].delivered_rounds == 3


@pytest.mark.parametrize(
    ("emf_init", "emf_rss_kb", "init_passes", "rss_passes"),
    [
        (140, 11264, True, True),  # 70 ms added vs 50 ms: 1.4x; 11 MB vs 10 MB: 1.1x
        (150, 12288, False, False),  # 80 ms vs 50 ms: 1.6x; 12 MB vs 10 MB: 1.2x
    ],
)
def test_targets_pass_and_fail_on_the_rules(
    emf_init: float, emf_rss_kb: int, init_passes: bool, rss_passes: bool
) -> None:
    """Init within 1.5x the floor's and RSS within 1.15x pass; beyond, they fail."""
    samples = [_round(i, 70, 120, emf_init, emf_rss_kb) for i in range(3)]
    summaries = summarize([s for r in samples for s in r], [NONE, FLOOR, EMF])
    verdicts = {t.name: t.passed for t in evaluate(summaries, SslCost(6.0, 4.5, 1.5))}
    assert verdicts["init, emf"] is init_passes
    assert verdicts["RSS, emf"] is rss_passes


@pytest.mark.parametrize(
    ("subscribes_invoke", "invocations", "first_invoke"),
    [(True, 3, 0.5), (True, 0, None), (False, None, None)],
)
def test_expected_datums_match_what_the_records_send(
    subscribes_invoke: bool, invocations: int | None, first_invoke: float | None
) -> None:
    """The benchmark's count of data points per environment is what the real records send."""
    from pathlib import Path

    from benchmarks.measure import expected_datums
    from benchmarks.variants import Variant

    from concurrency_observer.extension.records import (
        Environment,
        ShutdownFacts,
        build_delta_record,
        build_init_record,
        build_shutdown_record,
    )
    from concurrency_observer.extension.sinks.cloudwatch import put_metric_data_params

    environment = Environment("fn", "$LATEST", "on-demand")
    facts = ShutdownFacts("spindown", 2.0, 2.0, 1.0, invocations, first_invoke)
    records = [build_init_record(environment, 1.0), build_shutdown_record(environment, facts)]
    sent = sum(key.endswith(".MetricName") for key, _ in put_metric_data_params("N", records))
    variant = Variant("emf", Path("/opt"), subscribes_invoke=subscribes_invoke, metrics="full")
    assert expected_datums(variant, invoked=first_invoke is not None) == sent
    lean = [
        build_delta_record("init", environment, 1.0),
        build_delta_record("shutdown", environment, 2.0),
    ]
    sent = sum(key.endswith(".MetricName") for key, _ in put_metric_data_params("N", lean))
    variant = Variant("emf", Path("/opt"), subscribes_invoke=subscribes_invoke)
    assert expected_datums(variant, invoked=first_invoke is not None) == sent
