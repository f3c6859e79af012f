"""CloudWatch's time grid and dimension sets, as plain values: no AWS calls.

The report's window, the study's counts and the local EMF read-back align on the same periods;
``aws.metrics`` sends the same dimension sets.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

Dimensions = tuple[tuple[str, str], ...]


def floor_to_period(moment: datetime, period: int) -> datetime:
    """The UTC start of the ``period``-second interval (counted from the epoch) holding ``moment``.

    CloudWatch aligns its periods that way, so a query that starts there gets whole periods.
    """
    epoch = math.floor(moment.timestamp() / period) * period
    return datetime.fromtimestamp(epoch, timezone.utc)
