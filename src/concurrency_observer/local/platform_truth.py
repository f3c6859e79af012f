"""The platform's own figures as the RIE printed them, beside what the records say.

The ground truth of ``simulate``'s init durations and failed inits: every init the extension ran
in (the RIE logged it registering) has the RIE's ``INIT REPORT(durationMs: D)``, and
``INIT RTDONE(status: error)`` when the runtime's init failed. The records read back (through the
emulated Telemetry API: ``local/telemetry_emulator.py``) must carry the same durations, each
within ``TOLERANCE_MS``, and as many failed inits. The RIE's Managed Instances mode prints no
``INIT REPORT``: there nothing is compared.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from concurrency_observer import environment_record as rec

TOLERANCE_MS: Final = 1.0
_INIT_REPORT: Final = re.compile(r"INIT REPORT\(durationMs: ([0-9.]+)\)")
_INIT_FAILED: Final = "INIT RTDONE(status: error)"
_REGISTERED: Final = "External agent concurrency-observer"


@dataclass(frozen=True)
class PlatformTruth:
    """What the RIE reported about the inits the extension ran in."""

    init_durations_ms: tuple[float, ...]
    failed_inits: int


def platform_truth(outputs: Iterable[str]) -> PlatformTruth:
    """Every environment's INIT REPORTs (``outputs``: each environment's whole output)."""
    durations: list[float] = []
    failed = 0
    for output in outputs:
        for block in output.split("INIT START(")[1:]:
            match = _INIT_REPORT.search(block)
            if match is None or _REGISTERED not in block:
                continue  # an init the extension did not run in (or still running)
            durations.append(float(match.group(1)))
            failed += _INIT_FAILED in block
    return PlatformTruth(tuple(sorted(durations)), failed)


def _number(record: Mapping[str, Any], name: str) -> float | None:
    value = record.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


@dataclass(frozen=True)
class PlatformVerdict:
    """Init durations and failed inits: the records against the RIE's reports."""

    truth: PlatformTruth
    recorded_durations_ms: tuple[float, ...]
    recorded_failed: int

    @property
    def largest_gap_ms(self) -> float | None:
        """The largest difference between the sorted durations; ``None`` when counts differ."""
        if len(self.recorded_durations_ms) != len(self.truth.init_durations_ms):
            return None
        pairs = zip(self.recorded_durations_ms, self.truth.init_durations_ms, strict=True)
        return max((abs(a - b) for a, b in pairs), default=0.0)

    @property
    def matches(self) -> bool:
        """Every init's duration within ``TOLERANCE_MS``, and as many failed inits."""
        gap = self.largest_gap_ms
        return (
            gap is not None
            and gap <= TOLERANCE_MS
            and self.recorded_failed == self.truth.failed_inits
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``platform`` object of ``simulate --json``."""
        return {
            "init_durations": {
                "truth_count": len(self.truth.init_durations_ms),
                "recorded_count": len(self.recorded_durations_ms),
                "largest_gap_ms": self.largest_gap_ms,
                "tolerance_ms": TOLERANCE_MS,
                "truth_ms": list(self.truth.init_durations_ms),
                "recorded_ms": list(self.recorded_durations_ms),
            },
            "failed_inits": {"truth": self.truth.failed_inits, "recorded": self.recorded_failed},
            "verdict": "match" if self.matches else "mismatch",
        }


def platform_verdict(truth: PlatformTruth, records: Iterable[Mapping[str, Any]]) -> PlatformVerdict:
    """The records' init durations and failed inits against ``truth``."""
    durations: list[float] = []
    failed = 0
    for record in records:
        duration = _number(record, rec.INIT_DURATION_MS)
        if duration is not None:
            durations.append(duration)
        status = record.get(rec.INIT_STATUS)
        failed += isinstance(status, str) and status != "success"
    return PlatformVerdict(truth, tuple(sorted(durations)), failed)
