"""Renderers of an ``aws.report.Report``, separate from the CLI so ``simulate`` can reuse them.

- ``report_renderable(report)`` / ``print_report(report, console)``: rich tables for people.
- ``report_json(report)``: the stable JSON document (keys: ``Report.to_dict``).
- ``report_csv(report)`` / ``csv_rows(report)``: the same figures as long-format CSV rows
  ``section,key,timestamp,value`` (section and key are the JSON path).
- ``write_chart(report, path)``: a PNG of live environments over time, split by init type, with
  the requested provisioned concurrency as a horizontal line (matplotlib, imported on call).
"""

from __future__ import annotations

from concurrency_observer.reporting.chart import write_chart
from concurrency_observer.reporting.structured import CSV_HEADER, csv_rows, report_csv, report_json
from concurrency_observer.reporting.table import print_report, report_renderable

__all__ = [
    "CSV_HEADER",
    "csv_rows",
    "print_report",
    "report_csv",
    "report_json",
    "report_renderable",
    "write_chart",
]
