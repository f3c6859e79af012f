"""The platform's own figures as the RIE printed them, beside what the records say.

The ground truth of ``simulate``'s init durations and failed inits: every init the extension ran
in (the RIE logged it registering) has the RIE's ``INIT REPORT(durationMs: D)``, and
``INIT RTDONE(status: error)`` when the runtime's init failed. A held init (a provisioned or
proactive environment, initialized and not invoked: ``function/handler.py``) is the exception, as
on Lambda it is over before the environment waits: it lasted from ``INIT START`` to the function's
``INIT HELD(at: T)`` and succeeded, whatever the RIE reports when it is released or shut down
(``local/telemetry_emulator.py`` reports it so). The records read back (through the emulated
Telemetry API) must carry the same durations, each within ``TOLERANCE_MS``, and as many failed
inits. The RIE's Managed Instances mode prints no ``INIT REPORT``: there nothing is compared.

Where the records have no Telemetry API (the bash engine), their init fields come from the
platform's lines in the log group (figures.platform_join), which give the duration of an init a
request waited for and of a failed one, not of an environment initialized ahead of its first
request (its REPORT has no Init Duration, as on Lambda): the caller leaves those out.

**An init whose extension went without the Telemetry API** (its INFO line at init says
``telemetry off``: measured under load, the subscription's answer came after the 250 ms the
extension gives it) has no platform event in its record: its duration is unknown there, not wrong.
Such inits are counted apart (``PlatformTruth.lost``), not compared, and the output names them;
where another source filled the record's gap (Lambda's platform lines in the log group), the
records have those durations too, and they are compared with them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from concurrency_observer import environment_record as rec
from concurrency_observer.local.telemetry_emulator import INIT_HELD, held_duration_ms, rie_time

TOLERANCE_MS: Final = 1.0
_INIT_START: Final = "INIT START("
_INIT_REPORT: Final = re.compile(r"INIT REPORT\(durationMs: ([0-9.]+)\)")
_INIT_FAILED: Final = "INIT RTDONE(status: error)"
_REGISTERED: Final = "External agent concurrency-observer"
# The extension's INFO line at init when it has no Telemetry subscription (extension/telemetry.py).
_TELEMETRY_OFF: Final = "] INFO "
_TELEMETRY_OFF_NOTE: Final = "telemetry off"


@dataclass(frozen=True)
class PlatformTruth:
    """What the RIE reported about the inits the extension ran in."""

    init_durations_ms: tuple[float, ...]
    failed_inits: int
    # The RIE's durations of inits whose extension had no Telemetry subscription.
    lost_durations_ms: tuple[float, ...] = ()

    @property
    def lost(self) -> int:
        """Inits whose record cannot have the platform's figures from the Telemetry API."""
        return len(self.lost_durations_ms)


def _inits(output: str) -> Iterator[list[str]]:
    """Each init's lines, from its ``INIT START`` line to the next one (or the end)."""
    block: list[str] | None = None
    for line in output.splitlines():
        if _INIT_START in line:
            if block is not None:
                yield block
            block = []
        if block is not None:
            block.append(line)
    if block is not None:
        yield block


def _without_telemetry(block: list[str]) -> bool:
    """Whether the extension said, at this init, that it had no Telemetry subscription."""
    return any(_TELEMETRY_OFF in line and _TELEMETRY_OFF_NOTE in line for line in block)


def _init_truth(block: list[str]) -> tuple[float, bool] | None:
    """One init's duration and whether it failed; ``None`` when there is nothing to compare."""
    text = "\n".join(block)
    if _REGISTERED not in text:
        return None  # an init the extension did not run in
    held = INIT_HELD.search(text)
    if held is not None:  # over at the gate, successfully (see the module docstring)
        started = rie_time(block[0])
        return None if started is None else (held_duration_ms(started, float(held[1])), False)
    report = _INIT_REPORT.search(text)
    if report is None:
        return None  # still running when the output was read
    return float(report[1]), _INIT_FAILED in text


def platform_truth(outputs: Iterable[str]) -> PlatformTruth:
    """Every environment's inits (``outputs``: each environment's whole output)."""
    durations: list[float] = []
    lost: list[float] = []
    failed = 0
    for output in outputs:
        for block in _inits(output):
            found = _init_truth(block)
            if found is None:
                continue
            if _without_telemetry(block):
                lost.append(found[0])  # its record cannot have them from the Telemetry API
                continue
            durations.append(found[0])
            failed += found[1]
    return PlatformTruth(tuple(sorted(durations)), failed, tuple(sorted(lost)))


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
    # Where the records' init fields come from: the Telemetry API, or the platform's lines.
    source: str = "the Telemetry API"

    @property
    def compared_truth_ms(self) -> tuple[float, ...]:
        """The RIE's durations the records are paired with: those of the inits whose extension
        subscribed, or every one when the records have as many (a gap filled elsewhere)."""
        truth = self.truth
        every = tuple(sorted(truth.init_durations_ms + truth.lost_durations_ms))
        filled = truth.lost and len(self.recorded_durations_ms) == len(every)
        return every if filled else truth.init_durations_ms

    @property
    def largest_gap_ms(self) -> float | None:
        """The largest difference between the sorted durations; ``None`` when counts differ."""
        truth = self.compared_truth_ms
        if len(self.recorded_durations_ms) != len(truth):
            return None
        pairs = zip(self.recorded_durations_ms, truth, strict=True)
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
            "recorded_from": self.source,
            "inits_without_telemetry": self.truth.lost,
            "verdict": "match" if self.matches else "mismatch",
        }


def platform_verdict(
    truth: PlatformTruth, records: Iterable[Mapping[str, Any]], source: str = "the Telemetry API"
) -> PlatformVerdict:
    """The records' init durations and failed inits against ``truth``."""
    durations: list[float] = []
    failed = 0
    for record in records:
        duration = _number(record, rec.INIT_DURATION_MS)
        if duration is not None:
            durations.append(duration)
        status = record.get(rec.INIT_STATUS)
        failed += isinstance(status, str) and status != "success"
    return PlatformVerdict(truth, tuple(sorted(durations)), failed, source)
