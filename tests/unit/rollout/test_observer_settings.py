"""The record attaching writes, and how detaching takes the settings back from it."""

from __future__ import annotations

import pytest

from concurrency_observer.rollout.observer_settings import (
    METRICS_VARIABLE,
    RECORD_VARIABLE,
    BadRecord,
    Settings,
    read_record,
    with_settings,
    without_settings,
)
from concurrency_observer.rollout.sink import SINK_VARIABLE


def test_attach_records_what_it_set_and_detach_takes_it_back() -> None:
    """Absent before: removed after; the user's other variables are untouched both ways."""
    before = {"A": "1", "CONCURRENCY_OBSERVER_NAMESPACE": "Mine"}
    wanted = Settings().wanted("python3.12", before)
    after, record = with_settings(before, wanted)
    assert after[SINK_VARIABLE] == "cloudwatch"
    assert after[METRICS_VARIABLE] == "lean"
    assert record == {SINK_VARIABLE: (None, "cloudwatch"), METRICS_VARIABLE: (None, "lean")}
    assert read_record(after) == record
    restored, kept = without_settings(after)
    assert restored == before
    assert kept == []


def test_an_overwritten_value_comes_back() -> None:
    """The user's emf sink replaced by --sink cloudwatch is emf again after detaching."""
    before = {SINK_VARIABLE: "emf"}
    after, _ = with_settings(before, Settings(sink="cloudwatch").wanted("python3.12", before))
    assert after[SINK_VARIABLE] == "cloudwatch"
    assert without_settings(after)[0] == before


def test_a_value_the_user_already_had_is_not_recorded() -> None:
    """Attaching sets nothing it finds already right, so detaching leaves it alone."""
    before = {SINK_VARIABLE: "cloudwatch", METRICS_VARIABLE: "full"}
    after, record = with_settings(before, Settings().wanted("python3.12", before))
    assert after == before  # no record either: nothing was set
    assert record == {}
    assert without_settings(after)[0] == before


def test_a_second_attach_keeps_the_first_earlier_value() -> None:
    """lean then full: detaching restores what was there before the first attach (nothing)."""
    first, _ = with_settings({}, Settings().wanted("python3.12", {}))
    second, record = with_settings(first, Settings(metrics="full").wanted("python3.12", first))
    assert record[METRICS_VARIABLE] == (None, "full")
    assert without_settings(second)[0] == {}


def test_a_setting_changed_since_attaching_is_kept() -> None:
    """The user moved the sink to emf after attaching: detaching keeps emf and names it."""
    after, _ = with_settings({}, Settings().wanted("python3.12", {}))
    edited = {**after, SINK_VARIABLE: "emf"}
    restored, kept = without_settings(edited)
    assert restored == {SINK_VARIABLE: "emf"}
    assert kept == [SINK_VARIABLE]


def test_the_fallback_runtimes_default_to_emf() -> None:
    """nodejs22.x gets the emf sink by default (the bash fallback writes EMF whatever)."""
    assert Settings().wanted("nodejs22.x", {})[SINK_VARIABLE] == "emf"


@pytest.mark.parametrize("raw", ["not json", "[1]", '{"X": [1, "a"]}', '{"X": ["a"]}'])
def test_a_bad_record_is_refused(raw: str) -> None:
    """A record edited into something else is a BadRecord, never guessed at."""
    with pytest.raises(BadRecord, match=RECORD_VARIABLE):
        read_record({RECORD_VARIABLE: raw})


def test_the_names_are_the_ones_the_extension_reads() -> None:
    """The metrics variable is the extension's prefix plus METRICS; lean is the schema default."""
    from concurrency_observer import schema
    from concurrency_observer.extension import config

    assert f"{config.PREFIX}METRICS" == METRICS_VARIABLE
    assert Settings().wanted("python3.12", {})[METRICS_VARIABLE] == schema.DEFAULT_METRICS_PROFILE
    assert RECORD_VARIABLE.startswith(config.PREFIX)
