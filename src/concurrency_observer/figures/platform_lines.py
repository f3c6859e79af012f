"""The platform's own lines in a function's log group, read per log stream: pure, no AWS.

Lambda writes its own lines into each environment's log stream (one stream per environment),
whatever the runtime, whether or not an extension runs (docs/aws.md cites AWS's pages):

- text log format: ``INIT_START Runtime Version: ...`` at each init; ``INIT_REPORT Init Duration:
  D ms  Phase: P  Status: S  Error Type: E`` when an init fails or times out; per invocation
  ``REPORT RequestId: ...``, whose ``Init Duration: D ms`` marks the on-demand cold start a
  request waited for (the first invocation of an environment initialized for it);
- JSON log format (``LoggingConfig.LogFormat`` ``JSON``; the only one on Managed Instances): the
  same as ``platform.initStart`` (``record.runtimeVersion``, ``initializationType``),
  ``platform.initReport`` (``status``, ``errorType``, ``phase``, ``metrics.durationMs``) and
  ``platform.report`` (``metrics.initDurationMs``) objects.

``parse_line(message)`` reads one event's message; ``accounts(events)`` folds FilterLogEvents'
events (each with its ``logStreamName``) into one ``StreamAccount`` per stream: what the platform
says of that environment's init. ``figures.platform_join`` joins the accounts to the records.

``FILTER_TERMS`` are the terms that select these lines, a few per environment whatever its
invocations (only the REPORT that carries an Init Duration); ``aws.records`` ORs them with the
record's marker in one FilterLogEvents pattern.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

INIT_START: Final = "INIT_START"
INIT_REPORT: Final = "INIT_REPORT"
REPORT: Final = "REPORT RequestId"
JSON_INIT_START: Final = "platform.initStart"
JSON_INIT_REPORT: Final = "platform.initReport"
JSON_REPORT: Final = "platform.report"
# Each a quoted term: an exact phrase anywhere in the message (AWS), a substring (moto). Only
# the REPORT lines that carry an init duration: one per cold start, not one per invocation
# (``Init Duration`` also selects the text INIT_REPORT lines).
INIT_DURATION_TEXT: Final = "Init Duration"
INIT_DURATION_JSON: Final = "initDurationMs"
FILTER_TERMS: Final = (
    INIT_START,
    INIT_DURATION_TEXT,
    JSON_INIT_START,
    JSON_INIT_REPORT,
    INIT_DURATION_JSON,
)
STATUS_SUCCESS: Final = "success"
PHASE_INIT: Final = "init"

# A text line's fields are tab-separated "Name: value" pairs after the line's kind.
_FIELD: Final = re.compile(r"([A-Z][A-Za-z ]*?):\s*([^\t]*?)\s*(?=\t|$)")
_MILLISECONDS: Final = re.compile(r"^([0-9]+(?:\.[0-9]+)?) ms$")


@dataclass(frozen=True)
class PlatformLine:
    """One platform line, whichever its format: what it says of the environment's init."""

    kind: str  # JSON_INIT_START, JSON_INIT_REPORT or JSON_REPORT (the text kinds map to these)
    runtime_version: str | None = None
    init_type: str | None = None  # JSON only: initializationType
    init_duration_ms: float | None = None
    status: str | None = None
    error_type: str | None = None
    phase: str | None = None


def _milliseconds(text: str | None) -> float | None:
    match = _MILLISECONDS.match(text or "")
    return float(match[1]) if match else None


def _text_fields(rest: str) -> dict[str, str]:
    return {name.strip(): value for name, value in _FIELD.findall(rest)}


def _from_text(message: str) -> PlatformLine | None:
    line = message.strip()
    if line.startswith(INIT_START):
        fields = _text_fields(line[len(INIT_START) :])
        return PlatformLine(JSON_INIT_START, runtime_version=fields.get("Runtime Version") or None)
    if line.startswith(INIT_REPORT):
        fields = _text_fields(line[len(INIT_REPORT) :])
        return PlatformLine(
            JSON_INIT_REPORT,
            init_duration_ms=_milliseconds(fields.get("Init Duration")),
            status=fields.get("Status") or None,
            error_type=fields.get("Error Type") or None,
            phase=fields.get("Phase") or None,
        )
    if line.startswith(REPORT):
        fields = _text_fields(line[len("REPORT") :])
        return PlatformLine(
            JSON_REPORT, init_duration_ms=_milliseconds(fields.get("Init Duration"))
        )
    return None


def _text(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    return value if isinstance(value, str) and value else None


def _number(record: Mapping[str, Any], name: str) -> float | None:
    value = record.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def _from_json(document: Mapping[str, Any]) -> PlatformLine | None:
    kind, record = document.get("type"), document.get("record")
    if kind not in (JSON_INIT_START, JSON_INIT_REPORT, JSON_REPORT) or not isinstance(record, dict):
        return None
    metrics = record.get("metrics")
    metrics = metrics if isinstance(metrics, dict) else {}
    if kind == JSON_INIT_START:
        return PlatformLine(
            kind,
            runtime_version=_text(record, "runtimeVersion"),
            init_type=_text(record, "initializationType"),
        )
    if kind == JSON_INIT_REPORT:
        return PlatformLine(
            kind,
            init_type=_text(record, "initializationType"),
            init_duration_ms=_number(metrics, "durationMs"),
            status=_text(record, "status"),
            error_type=_text(record, "errorType"),
            phase=_text(record, "phase"),
        )
    return PlatformLine(kind, init_duration_ms=_number(metrics, "initDurationMs"))


def parse_line(message: str) -> PlatformLine | None:
    """The platform line in one log event's message, in either format; ``None`` for any other."""
    stripped = message.lstrip()
    if stripped.startswith("{"):
        if '"platform.' not in stripped:
            return None
        try:
            document = json.loads(stripped)
        except ValueError:
            return None
        return _from_json(document) if isinstance(document, dict) else None
    return _from_text(stripped)


@dataclass
class StreamAccount:
    """What the platform's lines in one log stream (one environment) say of its init."""

    stream: str
    runtime_version: str | None = None
    init_type: str | None = None
    # The on-demand cold start's Init Duration, from its first invocation's REPORT.
    cold_start_init_ms: float | None = None
    init_reports: list[PlatformLine] = field(default_factory=list)  # INIT_REPORTs, in order
    inits: int = 0  # INIT_STARTs seen
    reports: int = 0  # REPORTs seen (the scan asks only for those with an Init Duration)

    def add(self, line: PlatformLine) -> None:
        """Fold one line of this stream in."""
        if line.kind == JSON_INIT_START:
            self.inits += 1
            self.runtime_version = line.runtime_version or self.runtime_version
            self.init_type = line.init_type or self.init_type
        elif line.kind == JSON_INIT_REPORT:
            self.init_reports.append(line)
            self.init_type = line.init_type or self.init_type
        else:
            self.reports += 1
            if line.init_duration_ms is not None and self.cold_start_init_ms is None:
                self.cold_start_init_ms = line.init_duration_ms

    @property
    def failed_report(self) -> PlatformLine | None:
        """The last INIT_REPORT that is not a success (a failed or timed-out init)."""
        failed = [r for r in self.init_reports if r.status not in (None, STATUS_SUCCESS)]
        return failed[-1] if failed else None

    @property
    def init_duration_ms(self) -> float | None:
        """The init's duration: a failed init's report, else the cold start's, else any report."""
        failed = self.failed_report
        if failed is not None:
            return failed.init_duration_ms
        if self.cold_start_init_ms is not None:
            return self.cold_start_init_ms
        durations = [
            r.init_duration_ms for r in self.init_reports if r.init_duration_ms is not None
        ]
        return durations[-1] if durations else None

    @property
    def init_status(self) -> str | None:
        """``success`` or the failure's status; ``None`` when no line says how the init ended."""
        failed = self.failed_report
        if failed is not None:
            return failed.status
        if self.cold_start_init_ms is not None or self.init_reports:
            return STATUS_SUCCESS  # a request ran in it, or the platform reported it done
        return None

    @property
    def init_error_type(self) -> str | None:
        """The failed init's error type."""
        failed = self.failed_report
        return None if failed is None else failed.error_type

    @property
    def init_phase(self) -> str | None:
        """The reported init's phase (a cold start's REPORT is of the ``init`` phase)."""
        failed = self.failed_report
        if failed is not None:
            return failed.phase
        if self.init_reports and self.init_reports[-1].phase:
            return self.init_reports[-1].phase
        return PHASE_INIT if self.cold_start_init_ms is not None else None

    @property
    def felt_cold_start(self) -> bool:
        """Whether a request waited for this environment's init (a REPORT with Init Duration)."""
        return self.cold_start_init_ms is not None


@dataclass(frozen=True)
class PlatformLines:
    """The accounts of every stream a scan found platform lines in."""

    by_stream: Mapping[str, StreamAccount] = field(default_factory=dict)
    lines: int = 0
    line_bytes: int = 0  # UTF-8 bytes of the platform lines the scan returned
    # REPORT lines per stream, counted by a second scan of the streams whose records have no
    # invocations (aws.platform_invocations), when one was made.
    reports_by_stream: Mapping[str, int] = field(default_factory=dict)
    report_calls: int = 0
    report_bytes: int = 0

    @property
    def found(self) -> bool:
        """Whether any platform line was found."""
        return bool(self.lines)


def accounts(events: Iterable[Mapping[str, Any]]) -> PlatformLines:
    """Every platform line of FilterLogEvents' ``events``, folded per ``logStreamName``."""
    by_stream: dict[str, StreamAccount] = {}
    lines = size = 0
    for event in events:
        message = str(event.get("message", ""))
        line = parse_line(message)
        stream = event.get("logStreamName")
        if line is None or not isinstance(stream, str):
            continue
        lines += 1
        size += len(message.encode("utf-8"))
        by_stream.setdefault(stream, StreamAccount(stream)).add(line)
    return PlatformLines(by_stream, lines, size)
