"""The ``emf`` sink: one CloudWatch Embedded Metric Format document per record, on stdout.

``emf_document`` builds the document as a dict (tested against the EMF JSON schema);
``EmfSink`` only prints it, compact, one line, flushed at once so a frozen or killed environment
does not keep it in a buffer. No network, no IAM: CloudWatch Logs extracts the metrics from the
log stream. (AWS documents that for a function's own stdout; an extension's stdout goes to the same
stream, but no AWS page promises the extraction. The README says so.)
"""

from __future__ import annotations

import json
import sys

from concurrency_observer.extension.sinks import DeliveryResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from concurrency_observer.extension.records import Record

# EMF limits (specification): metrics per directive, dimension keys per set.
MAX_METRICS_PER_DIRECTIVE = 100
MAX_DIMENSIONS_PER_SET = 30


def emf_document(record: Record, namespace: str) -> dict[str, object]:
    """The EMF document for ``record``: one directive per distinct list of dimension sets."""
    directives: dict[tuple[tuple[str, ...], ...], list[dict[str, str]]] = {}
    for metric in record.metrics:
        directives.setdefault(metric.dimension_sets, []).append(
            {"Name": metric.name, "Unit": metric.unit}
        )
    document: dict[str, object] = {
        "_aws": {
            "Timestamp": record.timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [list(dimension_set) for dimension_set in sets],
                    "Metrics": metrics,
                }
                for sets, metrics in directives.items()
            ],
        }
    }
    document.update(record.dimensions)
    for metric in record.metrics:
        document[metric.name] = metric.value
    return document


def _write_stdout(line: str) -> None:
    sys.stdout.write(line)
    sys.stdout.flush()


class EmfSink:
    """Prints each record as one compact EMF line (``write`` defaults to stdout, flushed)."""

    name = "emf"
    may_block = False  # one write to stdout

    def __init__(self, namespace: str, write: Callable[[str], None] = _write_stdout) -> None:
        self.namespace = namespace
        self._write = write

    def deliver(self, records: Sequence[Record], deadline: float) -> DeliveryResult:
        """Write every record; a record whose write fails (closed stdout) is reported failed."""
        delivered: list[Record] = []
        failed: list[Record] = []
        reason = ""
        for record in records:
            line = json.dumps(emf_document(record, self.namespace), separators=(",", ":"))
            try:
                self._write(line + "\n")
            except (OSError, ValueError) as error:
                failed.append(record)
                reason = f"cannot write to stdout: {error}"
            else:
                delivered.append(record)
        return DeliveryResult(tuple(delivered), tuple(failed), reason)
