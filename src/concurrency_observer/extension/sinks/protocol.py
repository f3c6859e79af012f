"""The ``MetricSink`` protocol. Imported for type checking only: ``typing`` is slow to import."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from concurrency_observer.extension.records import Record
from concurrency_observer.extension.sinks import DeliveryResult


class MetricSink(Protocol):
    """Delivers records somewhere CloudWatch will count them."""

    name: str

    def deliver(self, records: Sequence[Record], deadline: float) -> DeliveryResult:
        """Deliver ``records`` before ``deadline`` (``time.monotonic()``); never raise."""
        ...
