"""JSON and CSV forms of a report, for scripts: both are built from ``Report.to_dict()``.

The CSV is long-format, one figure per row: ``section,key,timestamp,value``. ``section`` is the
top-level JSON key and ``key`` the rest of the JSON path joined with dots (``inits``,
``by_init_type.on-demand``); live series rows carry their period start in ``timestamp``
(``live``, ``series.total`` or ``series.by_init_type.<type>``). Null is an empty value.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any, Final

from concurrency_observer.figures.report_document import Report

CSV_HEADER: Final = ("section", "key", "timestamp", "value")

Row = tuple[str, str, str, str]


def report_json(report: Report) -> str:
    """The JSON document, indented, with a trailing newline."""
    return json.dumps(report.to_dict(), indent=2) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return str(value)


def _flatten(section: str, prefix: str, value: Any) -> Iterator[Row]:
    if isinstance(value, dict):
        for name, inner in value.items():
            yield from _flatten(section, f"{prefix}.{name}" if prefix else str(name), inner)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _flatten(section, f"{prefix}.{index}" if prefix else str(index), inner)
    else:
        yield (section, prefix, "", _cell(value))


def csv_rows(report: Report) -> list[Row]:
    """Every figure of the JSON document as a ``(section, key, timestamp, value)`` row."""
    rows: list[Row] = []
    for section, value in report.to_dict().items():
        if section != "live":
            rows.extend(_flatten(section, "", value))
            continue
        for name, inner in value.items():
            if name != "series":
                rows.append((section, name, "", _cell(inner)))
                continue
            for point in inner:
                stamp = point["timestamp"]
                rows.append((section, "series.total", stamp, _cell(point["total"])))
                for init_type, count in point["by_init_type"].items():
                    rows.append((section, f"series.by_init_type.{init_type}", stamp, _cell(count)))
    return rows


def report_csv(report: Report) -> str:
    """The CSV text, header first, ``\\r\\n`` line ends as the csv module writes them."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    writer.writerows(csv_rows(report))
    return buffer.getvalue()
