"""The ``emf`` sink: documents valid against the EMF schema, with the records' values and times."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest

from concurrency_observer import schema
from concurrency_observer.extension.records import (
    Environment,
    Record,
    ShutdownFacts,
    build_init_record,
    build_shutdown_record,
)
from concurrency_observer.extension.sinks.emf import (
    MAX_DIMENSIONS_PER_SET,
    MAX_METRICS_PER_DIRECTIVE,
    EmfSink,
    emf_document,
)

EMF_SCHEMA = json.loads((Path(__file__).parent / "emf_schema.json").read_text())
ENVIRONMENT = Environment("orders", "7", "on-demand")
INIT = build_init_record(ENVIRONMENT, 1700000000.123)
SHUTDOWN = build_shutdown_record(
    ENVIRONMENT, ShutdownFacts("timeout", 1700000360.5, 360.377, 12.0, 4, 0.25)
)


def assert_valid_emf(document: dict[str, object]) -> None:
    """Schema-valid, and every referenced dimension and metric is a root member of its type."""
    jsonschema.validate(document, EMF_SCHEMA)
    metadata = document["_aws"]
    assert isinstance(metadata, dict)
    for directive in metadata["CloudWatchMetrics"]:
        # The specification's limits, which CloudWatch enforces by dropping the document.
        assert len(directive["Metrics"]) <= MAX_METRICS_PER_DIRECTIVE
        for dimension_set in directive["Dimensions"]:
            assert len(dimension_set) <= MAX_DIMENSIONS_PER_SET
            for key in dimension_set:
                assert isinstance(document[key], str)
        for metric in directive["Metrics"]:
            assert isinstance(document[metric["Name"]], int | float)


@pytest.mark.parametrize("record", [INIT, SHUTDOWN], ids=["init", "shutdown"])
def test_documents_are_valid_emf(record: Record) -> None:
    """Init and shutdown documents validate against the EMF specification's schema."""
    assert_valid_emf(emf_document(record, "ConcurrencyObserver"))


def test_schema_rejects_a_broken_document() -> None:
    """The schema copy is strict enough to catch a missing Timestamp and a bad unit."""
    document = emf_document(INIT, "NS")
    metadata = document["_aws"]
    assert isinstance(metadata, dict)
    without_timestamp = {**document, "_aws": {**metadata, "Timestamp": None}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(without_timestamp, EMF_SCHEMA)
    bad_unit = json.loads(json.dumps(document).replace('"Count"', '"Counts"'))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad_unit, EMF_SCHEMA)


def test_init_document_values() -> None:
    """The init document: timestamp of init, namespace, dimensions and the value 1."""
    assert emf_document(INIT, "NS") == {
        "_aws": {
            "Timestamp": 1700000000123,
            "CloudWatchMetrics": [
                {
                    "Namespace": "NS",
                    "Dimensions": [list(s) for s in schema.BASE_DIMENSION_SETS],
                    "Metrics": [{"Name": schema.ENVIRONMENT_INIT, "Unit": schema.UNIT_COUNT}],
                }
            ],
        },
        "FunctionName": "orders",
        "FunctionVersion": "7",
        "InitType": "on-demand",
        "EnvironmentInit": 1,
    }


def test_shutdown_document_values() -> None:
    """The shutdown document: its own timestamp, every value, Shutdown also per reason."""
    document = emf_document(SHUTDOWN, "NS")
    metadata = document["_aws"]
    assert isinstance(metadata, dict)
    assert metadata["Timestamp"] == 1700000360500
    assert document["ShutdownReason"] == "timeout"
    assert document[schema.ENVIRONMENT_LIFETIME] == 360.377
    assert document[schema.ENVIRONMENT_INVOCATIONS] == 4
    directives = {
        tuple(m["Name"] for m in d["Metrics"]): d["Dimensions"]
        for d in metadata["CloudWatchMetrics"]
    }
    assert directives[(schema.ENVIRONMENT_SHUTDOWN,)][-2:] == [
        list(schema.SHUTDOWN_REASON_SET),
        list(schema.FIRST_INVOKE_SET),
    ]
    assert document[schema.FIRST_INVOKE] == schema.FIRST_INVOKE_PROMPT  # 0.25 s to first invoke
    others = [dims for names, dims in directives.items() if schema.ENVIRONMENT_LIFETIME in names]
    assert others == [[list(s) for s in schema.BASE_DIMENSION_SETS]]
    listed = [name for names in directives for name in names]
    assert sorted(listed) == sorted(m.name for m in SHUTDOWN.metrics)


def test_sink_prints_one_compact_line_per_record() -> None:
    """deliver() writes one compact JSON line per record and reports them delivered."""
    lines: list[str] = []
    result = EmfSink("NS", lines.append).deliver([INIT, SHUTDOWN], deadline=0)
    assert result.delivered == (INIT, SHUTDOWN)
    assert result.failed == ()
    assert len(lines) == 2
    assert all(line.endswith("\n") and line.count("\n") == 1 and ", " not in line for line in lines)
    assert json.loads(lines[0]) == emf_document(INIT, "NS")


def test_sink_reports_a_closed_stdout() -> None:
    """A write that fails is reported as failed, with the reason, not raised."""

    def broken(_line: str) -> None:
        raise OSError("closed")

    result = EmfSink("NS", broken).deliver([INIT], deadline=0)
    assert result.failed == (INIT,)
    assert "closed" in result.reason
