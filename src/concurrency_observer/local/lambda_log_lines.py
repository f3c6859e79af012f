"""Lambda's own lines in an environment's log stream, made from the RIE's output: pure.

On Lambda the platform writes its own lines into each environment's stream (figures.platform_lines
reads them; docs/aws.md cites AWS's pages). The RIE prints its own versions instead, so the
harness's log delivery (local.log_delivery) rewrites them as Lambda writes them, in the
function's log format (``LoggingConfig.LogFormat``):

- ``Text``: ``INIT_START Runtime Version: V`` at each init; ``INIT_REPORT Init Duration: D ms``
  with its phase, status and error type when an init fails; ``START``, ``END`` and ``REPORT
  RequestId: R  Duration: D ms  Billed Duration: B ms`` per invocation, the first invocation of
  an on-demand init a request waited for adding ``Init Duration: D ms``;
- ``JSON``: the same as ``platform.initStart``, ``platform.initReport``, ``platform.start`` and
  ``platform.report`` objects (``record.metrics.initDurationMs``). With a system log level of
  ``WARN`` Lambda sends none of them (they are INFO): none is written.

The durations and statuses are the RIE's, read by the same ``PlatformEvents`` the Telemetry API
emulation uses, so both sources say the same of an init (a held init's duration ends at the
gate, local.telemetry_emulator). An environment initialized ahead of its first request (a
provisioned or proactive one: ``first_init_held``) was waited for by no request: its first
REPORT has no Init Duration, as on Lambda. Every other line of the output is kept as it is.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from concurrency_observer.local.telemetry_emulator import PlatformEvents

LOG_FORMAT_TEXT: Final = "Text"
LOG_FORMAT_JSON: Final = "JSON"
LOG_FORMATS: Final = (LOG_FORMAT_TEXT, LOG_FORMAT_JSON)
SYSTEM_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARN")
# The RIE's per-invocation lines, which Lambda's replace.
_RIE_INVOCATION_LINE: Final = re.compile(r"^(START|END|REPORT) RequestId: ")
_ON_DEMAND: Final = "on-demand"


@dataclass(frozen=True)
class LogSettings:
    """The function's logging configuration, as far as the platform's lines go."""

    log_format: str = LOG_FORMAT_TEXT
    system_log_level: str = "INFO"  # JSON only: WARN drops the platform's (INFO) lines
    runtime_version: str = "provided:rie"

    def __post_init__(self) -> None:
        if self.log_format not in LOG_FORMATS:
            raise ValueError(f"log format {self.log_format!r}: one of {', '.join(LOG_FORMATS)}")
        if self.system_log_level not in SYSTEM_LOG_LEVELS:
            raise ValueError(f"system log level {self.system_log_level!r}")

    @property
    def writes_platform_lines(self) -> bool:
        """Whether Lambda sends its INFO lines: always in text, in JSON unless WARN."""
        return self.log_format == LOG_FORMAT_TEXT or self.system_log_level != "WARN"


def _milliseconds(value: float) -> str:
    return f"{value:.2f} ms"


class _Writer:
    """Turns platform events into Lambda's lines in one format."""

    def __init__(self, settings: LogSettings, first_init_held: bool) -> None:
        self.settings = settings
        self.first_init_held = first_init_held
        self.inits = 0
        self.pending_init_ms: float | None = None  # an on-demand init's duration, for its REPORT

    def json_line(self, event: dict[str, Any], record: dict[str, Any]) -> str:
        return json.dumps({"time": event["time"], "type": event["type"], "record": record})

    def lines(self, event: dict[str, Any]) -> list[str]:  # noqa: PLR0911 (one per kind)
        kind, record = event["type"], event["record"]
        text = self.settings.log_format == LOG_FORMAT_TEXT
        if kind == "platform.initStart":
            self.pending_init_ms = None
            self.inits += 1
            version = self.settings.runtime_version
            if text:
                return [f"INIT_START Runtime Version: {version}"]
            return [self.json_line(event, {**record, "runtimeVersion": version})]
        if kind == "platform.initReport":
            return self._init_report(event, record, text)
        if kind == "platform.report":
            return self._report(event, record, text)
        if kind != "platform.start":
            return []  # initRuntimeDone, runtimeDone: the Telemetry API's, not the log's
        if text:
            return [f"START RequestId: {record['requestId']} Version: $LATEST"]
        return [self.json_line(event, record)]

    def _init_report(self, event: dict[str, Any], record: dict[str, Any], text: bool) -> list[str]:
        duration = float(record["metrics"]["durationMs"])
        if record.get("status") == "success":
            # A request waits for an on-demand init, unless it was made ahead of the request:
            # the first init of an environment held for its first request.
            ahead = self.inits <= 1 and self.first_init_held
            waited = record.get("initializationType") == _ON_DEMAND and not ahead
            self.pending_init_ms = duration if waited else None
            return []
        if not text:
            return [self.json_line(event, record)]
        fields = [
            f"Init Duration: {_milliseconds(duration)}",
            f"Phase: {record.get('phase', 'init')}",
            f"Status: {record.get('status')}",
        ]
        if record.get("errorType"):
            fields.append(f"Error Type: {record['errorType']}")
        return ["INIT_REPORT " + "\t".join(fields)]

    def _report(self, event: dict[str, Any], record: dict[str, Any], text: bool) -> list[str]:
        duration = float(record["metrics"]["durationMs"])
        init_ms, self.pending_init_ms = self.pending_init_ms, None
        if not text:
            metrics: dict[str, Any] = {
                "durationMs": duration,
                "billedDurationMs": math.ceil(duration),
            }
            if init_ms is not None:
                metrics["initDurationMs"] = init_ms
            return [self.json_line(event, {**record, "metrics": metrics})]
        fields = [
            f"REPORT RequestId: {record['requestId']}",
            f"Duration: {_milliseconds(duration)}",
            f"Billed Duration: {math.ceil(duration)} ms",
        ]
        if init_ms is not None:
            fields.append(f"Init Duration: {_milliseconds(init_ms)}")
        return [f"END RequestId: {record['requestId']}", "\t".join(fields)]


def lambda_lines(
    output: str, settings: LogSettings, now: float = 0.0, *, first_init_held: bool = False
) -> Iterator[str]:
    """``output`` (an environment's, as the RIE printed it) as Lambda's stream would hold it.

    ``now``: when a line without its own stamp is taken to have been printed (epoch s);
    ``first_init_held``: the environment was initialized ahead of its first request.
    """
    events = PlatformEvents()
    writer = _Writer(settings, first_init_held)
    for line in output.splitlines():
        made = events.feed(line, now)
        if settings.writes_platform_lines:
            for event in made:
                yield from writer.lines(event)
        if not _RIE_INVOCATION_LINE.match(line):
            yield line
