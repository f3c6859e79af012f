"""The Telemetry API the RIE lacks: platform events made from what the RIE reports.

The RIE's default mode answers a Telemetry API subscription ``202 Telemetry.NotSupported``, yet
it prints what Lambda's platform events say: ``INIT START(type: T, phase: P)``, ``INIT
RTDONE(status: S)``, ``INIT REPORT(durationMs: D)``, the first fatal error's type, and each
invocation's ``START RequestId: R`` and ``REPORT RequestId: R  Duration: D ms``. A
``TelemetryEmulator`` serves the subscription (``PUT /2022-07-01/telemetry``, schema
``2025-01-29``, ``platform``, an HTTP destination) on 127.0.0.1, follows the environment's output
and posts the matching events to the subscriber, as Lambda does (batched, within ``POLL_S``):
``platform.initStart``, ``platform.initRuntimeDone``, ``platform.initReport`` (status ``error``
with the fatal error's type when the runtime's init failed), ``platform.start``,
``platform.report``. The extension is pointed at it with ``CONCURRENCY_OBSERVER_TELEMETRY_API``
(it subscribes there instead of at ``AWS_LAMBDA_RUNTIME_API``); nothing else of the
environment goes through it, so the invocations' path is the RIE's own.

Each init (a failed one is retried as a new init with phase ``invoke``, by a new extension
process) is a generation: its events go to the subscription made during it, never to an earlier
subscriber's listener, as a new sandbox's events would not.

**A held init** (provisioned and proactive environments: the harness holds the function's init at
a gate until the first invocation, since the RIE initializes lazily; ``function/handler.py``): on
Lambda that environment has finished its init and waits frozen. So when the function prints
``INIT HELD(at: T)`` on reaching the gate, the init is reported there, at T: successful, lasting
from the RIE's ``INIT START`` (its line's timestamp, UTC to the millisecond) to T. The RIE's own
later ``INIT RTDONE`` / ``INIT REPORT`` of that init are dropped: the time held is not init work,
and a shutdown while held is not a failed init.

**Under load** the emulator, a thread of the harness, can answer a subscription later than the
extension waits for it (250 ms at most, within its init budget): the extension then runs without
the Telemetry API and says so (``telemetry off``), its record has no platform figures, and
``late_answers`` counts the answer that found the subscriber gone. ``platform_truth`` does not
compare such an init.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

from concurrency_observer.local import ports

TELEMETRY_PATH: Final = "/2022-07-01/telemetry"
SCHEMA_VERSION: Final = "2025-01-29"
POLL_S: Final = 0.005  # how often the output is read: Lambda's minimal buffering is 25 ms
TELEMETRY_API_VARIABLE: Final = "CONCURRENCY_OBSERVER_TELEMETRY_API"

_INIT_START: Final = re.compile(r"INIT START\(type: ([\w-]+), phase: (\w+)\)")
_INIT_RTDONE: Final = re.compile(r"INIT RTDONE\(status: (\w+)\)")
_INIT_REPORT: Final = re.compile(r"INIT REPORT\(durationMs: ([0-9.]+)\)")
_FATAL: Final = re.compile(r"First fatal error stored in appctx: ([\w.]+)")
_START: Final = re.compile(r"^START RequestId: ([0-9a-f-]+)")
# The RIE puts its own (meaningless) Init Duration before the Duration of a first invocation.
_REPORT: Final = re.compile(
    r"^REPORT RequestId: ([0-9a-f-]+)\s+(?:Init Duration: [0-9.]+ ms\s+)?Duration: ([0-9.]+) ms"
)
# Printed by the harness's function at the init gate (function/handler.py, bash_runtime.sh).
INIT_HELD: Final = re.compile(r"INIT HELD\(at: ([0-9]+(?:\.[0-9]+)?)\)")
# The RIE's own timestamp, e.g. ``02 Dec 2026 16:55:32,203``: UTC (the harness sets TZ=:UTC).
_RIE_STAMP: Final = re.compile(r"^(\d{2}) (\w{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}),(\d{3}) ")
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


# An event as a handler makes it: type, record, and its time when not when the line was seen.
_Event = tuple[str, dict[str, Any], float | None]


def iso_time(epoch_s: float) -> str:
    """An event's ``time``: ISO 8601 with milliseconds and ``Z``."""
    moment = datetime.fromtimestamp(epoch_s, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def rie_time(line: str) -> float | None:
    """When the RIE printed ``line`` (epoch s, to its millisecond), ``None`` if it has no stamp."""
    match = _RIE_STAMP.match(line)
    if match is None or match.group(2) not in _MONTHS:
        return None
    day, month, year, hour, minute, second, millis = match.groups()
    try:
        moment = datetime(
            *(int(year), _MONTHS.index(month) + 1, int(day)),
            *(int(hour), int(minute), int(second), int(millis) * 1000),
            tzinfo=timezone.utc,
        )
    except ValueError:  # 31 Feb: not a stamp after all
        return None
    return moment.timestamp()


def held_duration_ms(init_started: float, held_at: float) -> float:
    """A held init's duration: from its start to the gate (epoch s), in ms to the microsecond."""
    return round(max(0.0, held_at - init_started) * 1000, 3)


@dataclass
class PlatformEvents:
    """Turns the RIE's output lines into platform events, one line at a time."""

    generation: int = 0  # INIT STARTs seen
    init_type: str = "on-demand"
    phase: str = "init"
    runtime_status: str | None = None
    fatal_error: str | None = None
    init_started: float | None = None  # epoch s: the INIT START line's stamp (else when seen)
    held: bool = False  # this generation's init reached the gate: reported, the rest dropped

    def feed(self, line: str, now: float) -> list[dict[str, Any]]:
        """The events ``line`` (seen at ``now``, epoch s) stands for; usually none."""
        handlers = (
            (_INIT_START, self._init_start),
            (INIT_HELD, self._init_held),
            (_FATAL, self._fatal),
            (_INIT_RTDONE, self._init_runtime_done),
            (_INIT_REPORT, self._init_report),
            (_START, self._start),
            (_REPORT, self._report),
        )
        for pattern, handle in handlers:
            match = pattern.search(line)
            if match:
                return [
                    {"time": iso_time(now if at is None else at), "type": kind, "record": record}
                    for kind, record, at in handle(match, now)
                ]
        return []

    def _init_start(self, match: re.Match[str], now: float) -> list[_Event]:
        self.generation += 1
        self.init_type, self.phase = match.group(1), match.group(2)
        self.runtime_status = self.fatal_error = None
        self.held = False
        self.init_started = rie_time(match.string)
        if self.init_started is None:
            self.init_started = now
        record = {"initializationType": self.init_type, "phase": self.phase}
        return [("platform.initStart", record, self.init_started)]

    def _init_held(self, match: re.Match[str], now: float) -> list[_Event]:
        if self.held or self.init_started is None:
            return []  # said twice, or no init under way: nothing to report
        self.held = True
        held_at = float(match.group(1))
        record: dict[str, Any] = {"initializationType": self.init_type, "phase": self.phase}
        duration = held_duration_ms(self.init_started, held_at)
        return [
            ("platform.initRuntimeDone", {**record, "status": "success"}, held_at),
            (
                "platform.initReport",
                {**record, "status": "success", "metrics": {"durationMs": duration}},
                held_at,
            ),
        ]

    def _fatal(self, match: re.Match[str], now: float) -> list[_Event]:
        self.fatal_error = self.fatal_error or match.group(1)
        return []

    def _init_runtime_done(self, match: re.Match[str], now: float) -> list[_Event]:
        if self.held:
            return []  # the RIE ends a held init at its release or shutdown: not init work
        self.runtime_status = match.group(1)
        record = {"initializationType": self.init_type, "phase": self.phase}
        return [("platform.initRuntimeDone", {**record, "status": self.runtime_status}, None)]

    def _init_report(self, match: re.Match[str], now: float) -> list[_Event]:
        if self.held:
            return []  # reported at the gate already (see the module docstring)
        status = self.runtime_status or "success"
        record: dict[str, Any] = {
            "initializationType": self.init_type,
            "phase": self.phase,
            "status": status,
            "metrics": {"durationMs": float(match.group(1))},
        }
        if status != "success":
            record["errorType"] = self.fatal_error or "Runtime.Unknown"
        return [("platform.initReport", record, None)]

    def _start(self, match: re.Match[str], now: float) -> list[_Event]:
        return [("platform.start", {"requestId": match.group(1), "version": "$LATEST"}, None)]

    def _report(self, match: re.Match[str], now: float) -> list[_Event]:
        done = {"requestId": match.group(1), "status": "success"}
        report = {**done, "metrics": {"durationMs": float(match.group(2))}}
        return [("platform.runtimeDone", done, None), ("platform.report", report, None)]


class TelemetryEmulator:
    """Serves subscriptions on 127.0.0.1 and posts the events of ``output`` to the subscriber."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.subscriptions: list[dict[str, Any]] = []  # the bodies received, in order
        self.delivered: list[dict[str, Any]] = []  # every event posted and answered 200
        self.late_answers = 0  # subscriptions answered after the subscriber had hung up
        self._events = PlatformEvents()
        self._queue: list[tuple[int, dict[str, Any]]] = []  # (generation, event)
        self._destinations: dict[int, int] = {}  # generation: the listener's port
        self._offset = 0
        self._partial = b""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = False
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, answer = emulator.subscribe(self.path, self.rfile.read(length))
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    # The subscriber gave up waiting (the extension bounds its subscription):
                    # on a busy machine this emulator can answer too late. Counted, not raised.
                    with emulator._lock:
                        emulator.late_answers += 1

        self._server = ThreadingHTTPServer((ports.LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self.address = f"{ports.LOOPBACK}:{self._server.server_address[1]}"
        self._threads = [
            threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True),
            threading.Thread(target=self._follow, daemon=True),
        ]

    def subscribe(self, path: str, body: bytes) -> tuple[int, bytes]:
        """A subscription's answer: 200 when it is one Lambda would take, else 400."""
        try:
            request = json.loads(body)
            uri = request["destination"]["URI"]
            valid = (
                path.rstrip("/") == TELEMETRY_PATH
                and request["schemaVersion"] == SCHEMA_VERSION
                and "platform" in request["types"]
                and request["destination"]["protocol"] == "HTTP"
            )
            port = int(uri.rsplit(":", 1)[1].split("/", 1)[0])
        except (ValueError, KeyError, TypeError, IndexError):
            valid = False
        if not valid:
            return 400, b'{"errorType":"ValidationError"}'
        self._read_new_lines()  # this subscription belongs to the init under way
        with self._lock:
            self.subscriptions.append(request)
            self._destinations[self._events.generation] = port
        return 200, b"OK"

    def _follow(self) -> None:
        while not self._stop.wait(POLL_S):
            self._read_new_lines()
            self._post_queued()

    def _read_new_lines(self) -> None:
        with self._lock:
            try:
                with self.output.open("rb") as log:
                    log.seek(self._offset)
                    chunk = log.read()
            except FileNotFoundError:
                return
            self._offset += len(chunk)
            lines = (self._partial + chunk).split(b"\n")
            self._partial = lines.pop()
            now = time.time()
            for line in lines:
                for event in self._events.feed(line.decode("utf-8", "replace"), now):
                    self._queue.append((self._events.generation, event))

    def _post_queued(self) -> None:
        with self._lock:
            ready = [(g, e) for g, e in self._queue if g in self._destinations]
            self._queue = [(g, e) for g, e in self._queue if g not in self._destinations]
            destinations = dict(self._destinations)
        for generation in sorted({g for g, _ in ready}):
            batch = [event for g, event in ready if g == generation]
            if self._post(destinations[generation], batch):
                self.delivered.extend(batch)

    def _post(self, port: int, batch: list[dict[str, Any]]) -> bool:
        """POST one batch; ``False`` if the listener is gone (its environment ended)."""
        connection = http.client.HTTPConnection(ports.LOOPBACK, port, timeout=2)
        try:
            connection.request(
                "POST", "/", json.dumps(batch).encode(), {"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            response.read()
            return response.status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    def start(self) -> TelemetryEmulator:
        """Serve and follow the output in daemon threads."""
        self._started = True
        for thread in self._threads:
            thread.start()
        return self

    def close(self) -> None:
        """Stop both threads; safe to repeat."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._started:  # shutdown() waits for serve_forever, which must be running
            self._server.shutdown()
            for thread in self._threads:
                thread.join(timeout=5)
        self._server.server_close()

    @contextmanager
    def running(self) -> Iterator[TelemetryEmulator]:
        """Started for the block."""
        self.start()
        try:
            yield self
        finally:
            self.close()
