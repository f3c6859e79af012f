"""The record reader against hostile lines: every refusal by reason, whose record it is, streams.

A function's log group holds whatever the function prints, so any line can look like a record.
These tests feed ``check_line``/``collect`` the lines of issue 27's table (and more) and check the
reader refuses or repairs each one, by the reason the notes will give, and never raises.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from concurrency_observer import environment_record as rec
from concurrency_observer.aws.ranking import RecordsScanned
from concurrency_observer.aws.records import MAX_DEPTH, MAX_LINE_LENGTH, check_line, collect
from concurrency_observer.figures.record_scan import belongs_to

from .test_records import T0, _ms, line, record


def _raw(document: dict[str, Any], name: str, text: str) -> str:
    """``document`` as a line whose field ``name`` holds the literal JSON ``text``."""
    return line({**document, name: "@@"}).replace('"@@"', text)


# (what the line is, the line, the reason it is refused)
REFUSED: list[tuple[str, str, str | None]] = [
    (
        "1,000 nested messages",
        "concurrencyObserver " + '{"message":' * 1000 + "1" + "}" * 1000,
        rec.REFUSED_TOO_LONG,
    ),
    (
        "nested within the size limit",
        '"concurrencyObserver" ' + '{"a":' * 40 + "1" + "}" * 40,
        rec.REFUSED_TOO_DEEP,
    ),
    (
        "escaped quotes that never close a string",
        "concurrencyObserver " + "{" * 5 + '\\"' * 2000,
        rec.REFUSED_TOO_DEEP,
    ),
    ("brackets inside strings", line(record(note="{[{[{[{[")), None),
    ("lifetime 1e999", _raw(record(), rec.LIFETIME_MS, "1e999"), rec.REFUSED_RANGE),
    (
        "a shutdown in the year 80,000",
        line(record(shutdownTime=2_462_400_000_000_000)),
        rec.REFUSED_RANGE,
    ),
    ("lifetime 9.9e12, instants 60 s", line(record(lifetimeMs=9.9e12)), rec.REFUSED_RANGE),
    (
        "lifetime a day, instants 60 s",
        line(record(lifetimeMs=86_400_000)),
        rec.REFUSED_INCONSISTENT,
    ),
    ("idle NaN", _raw(record(), rec.IDLE_MS, "NaN"), rec.REFUSED_MALFORMED),
    ("idle Infinity", _raw(record(), rec.IDLE_MS, "Infinity"), rec.REFUSED_MALFORMED),
    ("negative lifetime", line(record(lifetimeMs=-5)), rec.REFUSED_RANGE),
    ("init after shutdown", line(record(initTime=_ms(T0) + 120_000)), rec.REFUSED_INCONSISTENT),
    ("idle over the lifetime", line(record(idleMs=90_000)), rec.REFUSED_INCONSISTENT),
    (
        "a 200,000-character version",
        line(record(functionVersion="v" * 200_000)),
        rec.REFUSED_TOO_LONG,
    ),
    ("a 300-character version", line(record(functionVersion="v" * 300)), rec.REFUSED_RANGE),
    ("a bool for an instant", line(record(initTime=True)), rec.REFUSED_TYPE),
    ("a float instant", line(record(initTime=float(_ms(T0)))), rec.REFUSED_TYPE),
    ("a string lifetime", line(record(lifetimeMs="60000")), rec.REFUSED_TYPE),
    (
        "no shutdown time",
        line({k: v for k, v in record().items() if k != rec.SHUTDOWN_TIME}),
        rec.REFUSED_MISSING,
    ),
    ("a later format", line(record(concurrencyObserver="environment/2")), rec.REFUSED_VERSION),
    ("cut", line(record())[:-20], rec.REFUSED_MALFORMED),
    ("a lone surrogate", line(record()).replace('"fn"', '"f\\ud800"'), rec.REFUSED_RANGE),
    ("an unknown engine", line(record(engine="perl")), rec.REFUSED_RANGE),
    ("an unknown profile", line(record(metrics="fat")), rec.REFUSED_RANGE),
    ("an init type not a token", line(record(initType="On Demand!")), rec.REFUSED_RANGE),
    ("an id not 16 hex digits", line(record(environmentId="xyz")), rec.REFUSED_RANGE),
    ("2,000 digits", _raw(record(), rec.INIT_TIME, "1" * 2000), rec.REFUSED_RANGE),
    ("4,000 digits in a float", _raw(record(), rec.IDLE_MS, "1" * 3500 + ".5"), rec.REFUSED_RANGE),
    ("a JSON list", '[{"concurrencyObserver": 1}]', rec.REFUSED_MALFORMED),
    ("trailing text", line(record()) + " and more", rec.REFUSED_MALFORMED),
]


@pytest.mark.parametrize(("case", "message", "reason"), REFUSED, ids=[c[0] for c in REFUSED])
def test_a_hostile_line_is_refused_with_its_reason(
    case: str, message: str, reason: str | None
) -> None:
    """Each line that looks like a record and is not one: refused, by its reason, no exception
    (brackets inside a string do not count as nesting: that record is read)."""
    found, why = check_line(message)
    assert why == reason, case
    assert (found is None) == (reason is not None)


def test_the_bounds_are_stated() -> None:
    """A record is about 500 characters and one or two objects deep: the bounds leave room."""
    assert MAX_LINE_LENGTH >= 4 * 1024
    assert MAX_DEPTH >= 3
    wrapped = json.dumps({"message": json.dumps({"message": line(record())})})
    assert check_line(wrapped)[0] == record()


# (the optional field, a value that is dropped)
BAD_OPTIONAL = [
    (rec.INVOCATIONS, 1e30),
    (rec.INVOCATIONS, -7),
    (rec.INVOCATIONS, True),
    (rec.INVOCATIONS, 3.5),
    (rec.TIME_TO_FIRST_INVOKE_MS, 90_000),
    (rec.TIME_TO_FIRST_INVOKE_MS, -1),
    (rec.FIRST_INVOKE, "sometimes"),
    (rec.INIT_DURATION_MS, -3),
    (rec.INIT_DURATION_MS, 1e300),
    (rec.INIT_STATUS, "great"),
    (rec.INIT_PHASE, ["init"]),
    (rec.RESTORE_DURATION_MS, "fast"),
    (rec.RUNTIME_VERSION, "x" * 300),
    (rec.RUNTIME_VERSION, "python:3.12\x1b[31m"),
    (rec.AVAILABILITY_ZONE_ID, ""),
    (rec.MAX_CONCURRENT_INVOCATIONS, 2**40),
]


@pytest.mark.parametrize(("name", "value"), BAD_OPTIONAL)
def test_a_bad_optional_field_is_dropped_and_the_record_kept(name: str, value: object) -> None:
    """The record still counts; only the bad field is gone (never counted, never fatal)."""
    found, why = check_line(line({**record(), name: value}))
    assert why is None
    assert found == record()


def test_unknown_shutdown_reasons_are_read_as_other_and_unknown_keys_dropped() -> None:
    """Known reasons stay; others read as ``other``; keys outside the contract are not kept."""
    found, _ = check_line(line(record(shutdownReason="spin-down", extra={"deep": [1]})))
    assert found is not None
    assert found[rec.SHUTDOWN_REASON] == rec.OTHER_REASON
    assert "extra" not in found
    for reason in rec.READ_SHUTDOWN_REASONS:
        kept, _ = check_line(line(record(shutdownReason=reason)))
        assert kept is not None
        assert kept[rec.SHUTDOWN_REASON] == reason


def test_ordinary_lines_are_not_refusals() -> None:
    """Lines that never claimed to be a record are ignored, not counted as refused."""
    for message in ("START RequestId: 1", "concurrencyObserver is on", "{}", '{"a": 1}'):
        assert check_line(message) == (None, None)


def test_the_window_bounds_the_instants() -> None:
    """Instants past the scan's end (the future beyond the slack) or before it are refused."""
    document = line(record())
    shutdown = _ms(T0) + 60_000
    assert check_line(document, not_after_ms=shutdown)[0] == record()
    assert check_line(document, not_after_ms=shutdown - 1) == (None, rec.REFUSED_RANGE)
    assert check_line(document, not_before_ms=_ms(T0) + 1) == (None, rec.REFUSED_RANGE)


def test_collect_counts_refusals_by_reason_and_keeps_streams_and_sizes() -> None:
    """Refused lines by reason; each record's stream and size; a surrogate line costs no crash."""
    events: list[dict[str, Any]] = [
        {"message": line(record("00000000000000a1")), "logStreamName": "s/[$LATEST]a1"},
        {"message": line(record("00000000000000a2", lifetimeMs=-1)), "logStreamName": "s2"},
        {"message": line(record("00000000000000a3", initTime=True)), "logStreamName": "s3"},
        {"message": line(record("00000000000000a4", lifetimeMs=-2)), "logStreamName": "s4"},
        {
            "message": line(record("00000000000000a5")).replace("{", '{"x":"\ud800",', 1),
            "logStreamName": "s5",
        },
        {"message": 7},
        {"message": "START RequestId: 1"},
    ]
    scan = collect("/g", events, pages=1)
    assert [r[rec.ENVIRONMENT_ID] for r in scan.records] == ["00000000000000a1", "00000000000000a5"]
    assert scan.refused == {rec.REFUSED_RANGE: 2, rec.REFUSED_TYPE: 1}
    assert scan.refused_total == 3
    assert scan.log_streams == {"00000000000000a1": "s/[$LATEST]a1", "00000000000000a5": "s5"}
    assert scan.record_sizes["00000000000000a1"] == len(line(record()).encode())
    assert scan.record_bytes == sum(scan.record_sizes.values())


def test_whose_record_it_is() -> None:
    """functionName decides, and functionVersion when a version is asked; others are counted."""
    events = [
        {"message": line(record("00000000000000b1")), "logStreamName": "a"},
        {"message": line(record("00000000000000b2", functionVersion="3")), "logStreamName": "b"},
        {
            "message": line(record("00000000000000b3", functionName="other-fn")),
            "logStreamName": "c",
        },
        {"message": line(record("00000000000000b4", functionName="fn-2")), "logStreamName": "d"},
    ]
    scan = collect("/shared", events)
    mine = scan.of_function("fn")
    assert [r[rec.ENVIRONMENT_ID] for r in mine.records] == ["00000000000000b1", "00000000000000b2"]
    assert mine.other_functions == 2
    assert set(mine.log_streams) == {"00000000000000b1", "00000000000000b2"}
    assert mine.record_bytes == sum(mine.record_sizes.values()) < scan.record_bytes
    version = scan.of_function("fn", "3")
    assert [r[rec.ENVIRONMENT_ID] for r in version.records] == ["00000000000000b2"]
    assert version.other_functions == 2  # the other version is the same function's: not said
    assert mine.of_function("fn") == mine  # idempotent
    assert belongs_to(record(), "fn")
    assert not belongs_to(record(), "fn", "3")
    assert not belongs_to(record(), "f")


def test_validated_figures_are_finite_and_non_negative() -> None:
    """Whatever passes the validator is finite, non-negative and within the maximum lifetime."""
    found, _ = check_line(line(record(invocations=rec.MAX_COUNT, timeToFirstInvokeMs=0)))
    assert found is not None
    for name in (rec.LIFETIME_MS, rec.IDLE_MS, rec.INVOCATIONS, rec.TIME_TO_FIRST_INVOKE_MS):
        value = found[name]
        assert isinstance(value, int | float)
        assert math.isfinite(value)
        assert 0 <= value <= max(rec.MAX_LIFETIME_MS, rec.MAX_COUNT)


def test_the_ranking_says_its_calls_and_refusals_in_one_line_each() -> None:
    """``report --all``: the FilterLogEvents calls, then every group's refused lines together."""
    first = collect(
        "/a",
        [{"message": line(record())}, {"message": line(record("00000000000000c1", lifetimeMs=-1))}],
        pages=2,
    )
    second = collect("/b", [{"message": line(record(initTime=True))}], pages=1)
    notes = RecordsScanned((first, second), ("log group /aws/lambda/x assumed (denied)",)).notes()
    assert notes == (
        "environment records read from 2 log groups (FilterLogEvents, 3 calls)",
        "2 lines that looked like environment records refused, not counted "
        "(1 out of range, 1 wrong type)",
        "log group /aws/lambda/x assumed (denied)",
    )
    assert RecordsScanned((first,)).to_dict()["log_groups"][0]["refused"] == {"out of range": 1}
