"""Reading the lean profile back, as the tests need it: inits and shutdowns from EnvironmentDelta,
and the environment record lines in an environment's output."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from concurrency_observer import environment_record, schema
from concurrency_observer.local.readback import MetricSummary


def lean_counts(
    summaries: Iterable[MetricSummary], function_name: str
) -> dict[str, tuple[int, int]]:
    """(inits, shutdowns) per init type from the function's series, which must all be
    EnvironmentDelta under [FunctionName, InitType]: inits = (SampleCount + Sum) / 2, shutdowns =
    (SampleCount - Sum) / 2."""
    counts: dict[str, tuple[int, int]] = {}
    for summary in summaries:
        if summary.dimension(schema.FUNCTION_NAME) != function_name:
            continue
        assert summary.name == schema.ENVIRONMENT_DELTA, summary
        assert [name for name, _ in summary.dimensions] == ["FunctionName", "InitType"], summary
        init_type = summary.dimension(schema.INIT_TYPE)
        assert init_type is not None
        assert init_type not in counts  # one series per init type
        inits, shutdowns = (
            (summary.samples + summary.total) / 2,
            (summary.samples - summary.total) / 2,
        )
        assert inits == round(inits), summary
        assert shutdowns == round(shutdowns), summary
        counts[init_type] = (round(inits), round(shutdowns))
    return counts


def environment_records(output: str, function_name: str | None = None) -> list[dict[str, Any]]:
    """The environment record lines in ``output`` (of ``function_name`` when given)."""
    records = []
    for line in output.splitlines():
        start = line.find("{")
        if start < 0 or environment_record.MARKER_KEY not in line:
            continue
        try:
            document = json.loads(line[start:])
        except ValueError:
            continue
        if (
            isinstance(document, dict)
            and document.get(environment_record.MARKER_KEY) == environment_record.VERSION
            and (function_name is None or document.get("functionName") == function_name)
        ):
            records.append(document)
    return records
