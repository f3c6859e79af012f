"""Property: the record reader never raises, whatever the line; what it returns is a valid record.

Any text (lone surrogates included), any JSON document carrying the marker, any record with one
field replaced by any JSON value, any nesting depth of Lambda's JSON-format wrapping: the parser
returns a record the contract's validator accepts as it is, or None with a stated reason.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from concurrency_observer import environment_record as rec
from concurrency_observer.aws.records import check_line

from .test_records import line, record

ANY_TEXT = st.text(st.characters(blacklist_categories=[]), max_size=300)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | ANY_TEXT
)
ANY_JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(ANY_TEXT, children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = (*rec.REQUIRED_FIELDS, *rec.OPTIONAL_FIELDS)


def assert_parsed_safely(message: str) -> None:
    """``check_line`` returns a valid record or None with a known reason, and never raises."""
    found, why = check_line(message)
    if found is None:
        assert why is None or why in rec.REFUSED_REASONS
        return
    assert why is None
    again, refused = rec.check_record(found)
    assert (again, refused) == (found, None)  # what comes out passes the validator unchanged
    for value in found.values():
        if isinstance(value, float):
            assert math.isfinite(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            assert value >= 0


@given(ANY_TEXT)
def test_any_text(text: str) -> None:
    """Any text, with the marker word around it or not."""
    assert_parsed_safely(text)
    assert_parsed_safely(f'"{rec.MARKER_KEY}" {{{text}')


@given(ANY_JSON)
def test_any_json_with_the_marker(document: Any) -> None:
    """Any JSON document, as a record's marker value, or beside the marker."""
    assert_parsed_safely(json.dumps({rec.MARKER_KEY: document}))
    assert_parsed_safely(json.dumps({rec.MARKER_KEY: rec.VERSION, "message": document}))
    assert_parsed_safely(rec.MARKER_KEY + json.dumps(document))


@given(st.sampled_from(FIELDS), ANY_JSON)
def test_any_record_with_one_field_mutated(name: str, value: Any) -> None:
    """A good record with one field replaced by any JSON value (NaN and Infinity included)."""
    assert_parsed_safely(json.dumps({**record(), name: value}))


@given(st.sampled_from(rec.REQUIRED_FIELDS))
def test_any_record_with_one_field_missing(name: str) -> None:
    """A record without one required field is refused as missing it."""
    document = {k: v for k, v in record().items() if k != name}
    expected = rec.REFUSED_MALFORMED if name == rec.MARKER_KEY else rec.REFUSED_MISSING
    assert check_line(rec.MARKER_KEY + json.dumps(document)) == (None, expected)


@given(st.integers(min_value=0, max_value=3000))
def test_any_depth_of_objects(depth: int) -> None:
    """A record wrapped ``depth`` times as the ``message`` object: found up to two wrappers."""
    message = '{"message":' * depth + line(record()) + "}" * depth
    assert_parsed_safely(message)
    assert (check_line(message)[0] is not None) == (depth <= 2)


@given(st.integers(min_value=0, max_value=8))
def test_any_depth_of_strings(depth: int) -> None:
    """A record wrapped ``depth`` times as a string of JSON (each level escapes the last)."""
    message = line(record())
    for _ in range(depth):
        message = json.dumps({"message": message})
    assert_parsed_safely(message)
    assert (check_line(message)[0] is not None) == (depth <= 2)
