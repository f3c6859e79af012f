"""``report`` against a log group holding good records and one hostile line (issue 27's table).

Each case is a moto log group with the records of test_report_lean_moto's environments and one line
shaped like a record: one the reader must refuse (an extra line, so the figures must not move),
or one whose only fault is an optional field (it replaces the good record of an environment that
has no invocation count, so dropping the field gives that record back exactly). ``report`` must
exit 0 in every format, and its JSON figures must equal those of the good records alone.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from click.testing import CliRunner

from concurrency_observer import environment_record as rec
from concurrency_observer.aws.session import client
from concurrency_observer.cli.report import report as report_command
from tests.unit.aws.test_report_lean_moto import _record, seed_lean
from tests.unit.aws.test_report_moto import ENVS, PERIOD, REGION, WINDOW, aws_env, cloudwatch

__all__ = ["aws_env", "cloudwatch"]  # fixtures used by name

# The environment without an invocation count (SHUTDOWN only): a bad optional field on its record
# is dropped and leaves exactly its good record.
UNCOUNTED = next(i for i, e in enumerate(ENVS) if e.invocations is None and e.shutdown_at)
# Keys of the JSON document that name the function or say what was read, not figures.
NOT_FIGURES = ("function", "namespace", "notes", "records_read", "observer_bill", "warnings")

Mutation = Callable[[dict[str, Any]], str]


def _text(document: dict[str, Any], name: str, literal: str) -> str:
    return json.dumps({**document, name: "@@"}, separators=(",", ":")).replace('"@@"', literal)


def _with(**fields: Any) -> Mutation:
    return lambda document: json.dumps({**document, **fields}, separators=(",", ":"))


# (case, how the line is made from a good record of a new environment, whether it is refused)
CASES: list[tuple[str, Mutation, bool]] = [
    (
        "1,000 nested messages",
        lambda _d: "concurrencyObserver " + '{"message":' * 1000 + "1" + "}" * 1000,
        True,
    ),
    ("lifetime 1e999", lambda d: _text(d, rec.LIFETIME_MS, "1e999"), True),
    ("shutdown in the year 80,000", _with(shutdownTime=2_462_400_000_000_000), True),
    ("lifetime 9.9e12", _with(lifetimeMs=9.9e12), True),
    ("idle NaN", lambda d: _text(d, rec.IDLE_MS, "NaN"), True),
    ("negative lifetime", _with(lifetimeMs=-1000), True),
    ("init after shutdown", lambda d: _with(initTime=d[rec.SHUTDOWN_TIME] + 5)(d), True),
    ("a 200,000-character version", _with(functionVersion="v" * 200_000), True),
    ("a bool instant", _with(initTime=True), True),
    ("a lone surrogate", _with(functionName="\ud800"), True),
    ("invocations 1e30", _with(invocations=1e30), False),
    ("invocations -7", _with(invocations=-7), False),
]


def _start() -> datetime:
    return datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=40)


def _seed_with(
    cloudwatch: Any, case: Mutation, refused: bool, start: datetime
) -> tuple[str, str, datetime]:
    suffix = uuid.uuid4().hex[:8]
    namespace, function = f"Test/{suffix}", f"fn-{suffix}"
    logs = client("logs", REGION)
    seed_lean(cloudwatch, logs, namespace, function, start)
    group = f"/aws/lambda/{function}"
    good = _record(ENVS[UNCOUNTED], UNCOUNTED, function, start)
    if refused:  # an extra line, of an environment that never was
        hostile = case({**good, rec.ENVIRONMENT_ID: "feedfacefeedface"})
        stamp = good[rec.SHUTDOWN_TIME]
    else:  # the uncounted environment's record, delivered first, with one bad optional field
        hostile = case(good)
        stamp = good[rec.SHUTDOWN_TIME] - 1
    stream = f"{start:%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": stamp, "message": hostile}],
    )
    return namespace, function, start


def _run(namespace: str, function: str, start: datetime, output: str) -> str:
    args = [
        "--function", function, "--namespace", namespace, "--region", REGION,
        "--start", start.isoformat(), "--end", (start + WINDOW).isoformat(),
        "--lookback", "30m", "--period", str(PERIOD), "--format", output,
    ]  # fmt: skip
    result = CliRunner().invoke(report_command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _figures(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in NOT_FIGURES}


@pytest.fixture
def baseline(cloudwatch: Any) -> tuple[dict[str, Any], datetime]:
    """The JSON document of the good records alone, and the window's start."""
    suffix = uuid.uuid4().hex[:8]
    start = _start()
    namespace, function = f"Test/{suffix}", f"fn-{suffix}"
    seed_lean(cloudwatch, client("logs", REGION), namespace, function, start)
    document: dict[str, Any] = json.loads(_run(namespace, function, start, "json"))
    return document, start


@pytest.mark.parametrize(("case", "mutation", "refused"), CASES, ids=[c[0] for c in CASES])
def test_report_survives_a_hostile_line(
    cloudwatch: Any,
    baseline: tuple[dict[str, Any], datetime],
    case: str,
    mutation: Mutation,
    refused: bool,
) -> None:
    """Exit 0 in every format; the figures are the good records'; the refusal is said."""
    good, start = baseline
    namespace, function, start = _seed_with(cloudwatch, mutation, refused, start)
    document = json.loads(_run(namespace, function, start, "json"))
    assert _figures(document) == _figures(good), case
    assert document["observer_bill"]["records"] == good["observer_bill"]["records"]
    read = document["records_read"]
    assert read["refused_total"] == (1 if refused else 0), read
    said = [n for n in document["notes"] if "looked like environment records refused" in n]
    assert len(said) == (1 if refused else 0)
    table = _run(namespace, function, start, "table")
    assert "Traceback" not in table
    assert ("looked like environment records" in " ".join(table.split())) == refused
    rows = _run(namespace, function, start, "csv")
    assert f"records_read,refused_total,,{1 if refused else 0}" in rows.replace("\r\n", "\n")
