"""Lambda's own ``Invocations`` metric, emulated: what ``report`` divides the cold starts by.

On Lambda, the service publishes ``AWS/Lambda`` ``Invocations`` (dimension ``FunctionName``, a
``Sum`` of 1 per invocation); ``report`` reads it for the share of invocations that were cold
starts (``aws.lambda_invocations``). The RIE publishes nothing, so the harness does: ``served``
notes the moment of each invocation the fleet serves, and ``publish`` puts them all at the end of
the run, one datum of 1 per invocation stamped at its moment, in PutMetricData-sized batches.
Nothing is put while the load plays, so the emulation costs the simulation's timing nothing.

Publishing never fails the run: an error is kept (``errors``) and the share reads unknown, as on
an account whose Lambda metrics cannot be read.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, Final

from concurrency_observer.aws.lambda_invocations import INVOCATIONS, LAMBDA_NAMESPACE
from concurrency_observer.schema import FUNCTION_NAME

MAX_DATUMS_PER_PUT: Final = 1000  # PutMetricData's limit on MetricData items per call


def invocation_datums(function_name: str, moments: Sequence[float]) -> list[dict[str, Any]]:
    """One ``Invocations`` datum of 1 per moment (epoch seconds), as Lambda counts them."""
    dimensions = [{"Name": FUNCTION_NAME, "Value": function_name}]
    return [
        {
            "MetricName": INVOCATIONS,
            "Dimensions": dimensions,
            "Timestamp": datetime.fromtimestamp(moment, timezone.utc),
            "Value": 1.0,
            "Unit": "Count",
        }
        for moment in sorted(moments)
    ]


def batches(datums: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """``datums`` in groups PutMetricData accepts."""
    for first in range(0, len(datums), MAX_DATUMS_PER_PUT):
        yield list(datums[first : first + MAX_DATUMS_PER_PUT])


class LambdaInvocationsMetric:
    """Notes each served invocation's moment; puts them as ``AWS/Lambda`` ``Invocations``."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.errors: list[str] = []
        self._moments: list[float] = []
        self._lock = threading.Lock()

    @property
    def invocations(self) -> int:
        """How many invocations were noted."""
        with self._lock:
            return len(self._moments)

    def served(self, moment: float) -> None:
        """Note an invocation the fleet served, begun at ``moment`` (epoch seconds)."""
        with self._lock:
            self._moments.append(moment)

    def publish(self, cloudwatch: Any) -> int:
        """Put every noted invocation (``cloudwatch``: a boto3 client); how many were put."""
        with self._lock:
            moments = list(self._moments)
        put = 0
        try:
            for batch in batches(invocation_datums(self.function_name, moments)):
                cloudwatch.put_metric_data(Namespace=LAMBDA_NAMESPACE, MetricData=batch)
                put += len(batch)
        except Exception as error:  # a lost metric leaves the share unknown, never the run
            self.errors.append(f"AWS/Lambda Invocations not put: {type(error).__name__}: {error}")
        return put
