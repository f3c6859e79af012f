"""The ``MetricSink`` protocol. Imported for type checking only: ``typing`` is slow to import."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from concurrency_observer.extension.records import Record
from concurrency_observer.extension.sinks import DeliveryResult


class MetricSink(Protocol):
    """Delivers records somewhere CloudWatch will count them."""

    name: str
    # True when ``deliver`` may wait on the network; the init delivery then runs in a thread.
    may_block: bool

    def deliver(self, records: Sequence[Record], deadline: float) -> DeliveryResult:
        """Deliver ``records`` before ``deadline`` (``time.monotonic()``); never raise."""
        ...
