"""The Managed Instances traffic the telemetry load benchmark posts, checked before it is timed."""

from __future__ import annotations

import json

from benchmarks.telemetry_load import MAX_ITEMS, WINDOW_MS, deliveries

from concurrency_observer.extension.platform_account import PlatformAccount


def test_deliveries_carry_every_pair_in_windows_of_at_most_max_items() -> None:
    """2,000 invocations at 5,000/s: every start and report once, in time order, by window."""
    planned = deliveries(5000, 0.4, 1_800_000_000_000)
    events = [event for _, body, _ in planned for event in json.loads(body)]
    assert len(events) == 4000
    assert all(len(json.loads(body)) <= MAX_ITEMS for _, body, _ in planned)
    assert sum(completed for _, _, completed in planned) == 2000
    dues = [due for due, _, _ in planned]
    assert dues == sorted(dues)
    assert dues[0] == WINDOW_MS / 1000
    account = PlatformAccount(count_invocations=True)
    for _, body, _ in planned:
        account.observe_batch(body)
    facts = account.facts(init_time_ms=0.0, prompt_threshold_ms=1e12)
    assert facts["invocations"] == 2000
    assert 900 <= int(str(facts["maxConcurrentInvocations"])) <= 1001  # 5,000/s x 100-300 ms
    assert account.refused == account.malformed == 0
