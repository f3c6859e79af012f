"""The settings attaching puts on a function, and the record that lets detaching take them back.

Attaching sets ``CONCURRENCY_OBSERVER_SINK`` and ``CONCURRENCY_OBSERVER_METRICS`` where they are
missing or asked to change, and writes one more variable, ``CONCURRENCY_OBSERVER_ATTACHED``: a
compact JSON object naming each variable it set, with the value the function had before (null:
none) and the value it set, e.g. ``{"CONCURRENCY_OBSERVER_SINK":[null,"cloudwatch"]}``.

Detaching reads that record and, for each variable in it, puts the earlier value back (removes the
variable where there was none), but only while the variable still holds the value attaching set:
one you changed since is yours and stays. Variables not in the record are never touched, even
``CONCURRENCY_OBSERVER_*`` ones you set yourself (a namespace, a log level). Why a record and not
"remove every CONCURRENCY_OBSERVER_* variable": that would also take your own settings, and could
not restore a value that attaching overwrote. The extension ignores the record variable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from concurrency_observer import schema
from concurrency_observer.rollout.sink import DEFAULT_SINK, SINK_VARIABLE, Sink, uses_fallback

METRICS_VARIABLE: Final = "CONCURRENCY_OBSERVER_METRICS"
RECORD_VARIABLE: Final = "CONCURRENCY_OBSERVER_ATTACHED"

# name -> (the value before attaching, or None; the value attaching set)
Record = dict[str, tuple[str | None, str]]


class BadRecord(ValueError):
    """The record variable is not what attaching writes (edited by hand?)."""


def read_record(variables: Mapping[str, str]) -> Record:
    """The record on a function (empty when there is none); BadRecord if it cannot be read."""
    raw = variables.get(RECORD_VARIABLE)
    if raw is None:
        return {}
    try:
        loaded = json.loads(raw)
    except ValueError as exc:
        raise BadRecord(f"{RECORD_VARIABLE} is not JSON: {raw[:60]!r}") from exc
    record: Record = {}
    if not isinstance(loaded, dict):
        raise BadRecord(f"{RECORD_VARIABLE} is not a JSON object: {raw[:60]!r}")
    for name, pair in loaded.items():
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not (pair[0] is None or isinstance(pair[0], str))
            or not isinstance(pair[1], str)
        ):
            raise BadRecord(f"{RECORD_VARIABLE} has a bad entry for {name}: {pair!r}")
        record[str(name)] = (pair[0], pair[1])
    return record


def write_record(record: Record) -> str:
    """The record's compact JSON, names sorted so the same record is always the same string."""
    return json.dumps({name: list(record[name]) for name in sorted(record)}, separators=(",", ":"))


@dataclass(frozen=True)
class Settings:
    """What attaching asks for: None keeps the function's own value, else a default."""

    sink: Sink | None = None
    metrics: str | None = None

    def wanted(self, runtime: str | None, current: Mapping[str, str]) -> dict[str, str]:
        """Each setting's value for this function: asked for, else its own, else the default.

        Where the bash fallback runs, the default sink is ``emf``: what it writes whatever the
        variable says.
        """
        default_sink: Sink = "emf" if uses_fallback(runtime) else DEFAULT_SINK
        return {
            SINK_VARIABLE: self.sink or current.get(SINK_VARIABLE) or default_sink,
            METRICS_VARIABLE: self.metrics
            or current.get(METRICS_VARIABLE)
            or schema.DEFAULT_METRICS_PROFILE,
        }


def with_settings(
    variables: Mapping[str, str], wanted: Mapping[str, str]
) -> tuple[dict[str, str], Record]:
    """The variables with ``wanted`` set, and the updated record (kept in the variables too).

    An entry already in the record keeps its earlier value: the value before the *first*
    attach is what detaching restores.
    """
    record = read_record(variables)
    after = dict(variables)
    for name, value in wanted.items():
        if after.get(name) == value:
            continue
        before = record[name][0] if name in record else variables.get(name)
        record[name] = (before, value)
        after[name] = value
    if record:
        after[RECORD_VARIABLE] = write_record(record)
    return after, record


def without_settings(variables: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The variables with the record's settings taken back, and the names left as they are.

    A variable still holding what attaching set gets its earlier value back (or goes); one
    changed since is kept and named in the second item.
    """
    record = read_record(variables)
    after = dict(variables)
    kept = []
    for name, (before, value) in sorted(record.items()):
        if after.get(name) != value:
            kept.append(name)
        elif before is None:
            del after[name]
        else:
            after[name] = before
    after.pop(RECORD_VARIABLE, None)
    return after, kept
