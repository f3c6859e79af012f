"""The extension's CPU under Lambda Managed Instances traffic: start/report pairs, posted to the
Telemetry listener on 127.0.0.1 as Lambda delivers them, at a given rate of invocations.

Each implementation (this checkout's, and a baseline revision's taken with ``git archive``) runs
in its own ``python3 -I -S -B`` as the extension does: a ``PlatformAccount`` counting invocations
behind a ``TelemetryListener``, nothing else. This process then posts, on one kept-alive
connection, what the platform would: every 25 ms (the subscription's buffering timeout) one
delivery of the ``platform.start`` and ``platform.report`` events of that window, at most 1,000
per delivery, for invocations of 100 to 300 ms starting ``rate`` times a second for
``seconds``. The deliveries are built before the clock starts and paced by the wall clock; one
that is late goes at once. The run stops after ``time_limit`` seconds whatever was posted, so a
baseline that cannot keep up ends too (its line says how much it took).

Printed per implementation and rate: the listener process's CPU (user + system, from the first
delivery to the account's facts at the end) in seconds and as a share of one core over the
traffic's wall time, its peak RSS, what it counted against what was sent::

    nice .venv/bin/python -m benchmarks.telemetry_load --rates 1000,5000 --baseline adfc09c

docs/benchmarks.md ("The Telemetry listener under Managed Instances traffic") has the figures.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

WINDOW_MS = 25  # the subscription's buffering timeout: one delivery per window
MAX_ITEMS = 1000  # the subscription's maxItems
ROOT = Path(__file__).resolve().parents[1]

# The listener process: prints its port, serves until a line on stdin, then prints its figures.
_LISTENER = r"""
import json, os, resource, sys
sys.path.insert(0, sys.argv[1])
from concurrency_observer.extension.platform_account import PlatformAccount
from concurrency_observer.extension.telemetry_listener import TelemetryListener
account = PlatformAccount(count_invocations=True)
listener = TelemetryListener("127.0.0.1", 0, account.observe_batch)
listener.start()
before = os.times()
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(listener.port, flush=True)
sys.stdin.readline()
facts = account.facts(init_time_ms=0.0, prompt_threshold_ms=1e12)
after = os.times()
print(json.dumps({
    "cpu_s": (after.user - before.user) + (after.system - before.system),
    "invocations": facts.get("invocations", 0),
    "max_concurrent": facts.get("maxConcurrentInvocations", 0),
    "requests": listener.requests,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "rss_before_mb": rss_before / 1024,
}), flush=True)
"""


@dataclass(frozen=True)
class Outcome:
    """One implementation at one rate."""

    name: str
    rate: int
    sent: int  # invocations whose two events were posted
    planned: int  # invocations the run was to post
    wall_s: float  # from the first delivery to the last answer
    cpu_s: float
    invocations: int
    max_concurrent: int
    peak_rss_mb: float

    @property
    def core_share(self) -> float:
        """CPU over the traffic's wall time: 1.0 is one core busy throughout."""
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


def _stamp(epoch_ms: int) -> str:
    seconds, millis = divmod(epoch_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def deliveries(rate: int, seconds: float, base_ms: int) -> list[tuple[float, bytes, int]]:
    """(when to post, in seconds from the start; the body; invocations completed in it)."""
    windows: dict[int, list[tuple[int, dict[str, object]]]] = {}
    count = int(rate * seconds)
    for i in range(count):
        start_ms = i * 1000 // rate
        duration = 100 + (i * 37) % 201  # 100-300 ms, spread
        request_id = f"{i:08x}-0000-4000-8000-{i:012x}"
        started: dict[str, object] = {"time": _stamp(base_ms + start_ms), "type": "platform.start"}
        started["record"] = {"requestId": request_id, "version": "$LATEST"}
        reported: dict[str, object] = {"time": _stamp(base_ms + start_ms + duration)}
        reported["type"] = "platform.report"
        reported["record"] = {
            "requestId": request_id,
            "status": "success",
            "metrics": {"durationMs": float(duration)},
        }
        windows.setdefault(start_ms // WINDOW_MS, []).append((0, started))
        windows.setdefault((start_ms + duration) // WINDOW_MS, []).append((1, reported))
    planned: list[tuple[float, bytes, int]] = []
    for window in sorted(windows):
        events = windows[window]
        for first in range(0, len(events), MAX_ITEMS):
            part = events[first : first + MAX_ITEMS]
            body = json.dumps([event for _, event in part]).encode()
            planned.append(((window + 1) * WINDOW_MS / 1000, body, sum(k for k, _ in part)))
    return planned


def run(name: str, source: Path, rate: int, seconds: float, time_limit: float) -> Outcome:
    """Start the listener from ``source`` and post the traffic to it; its figures."""
    process = subprocess.Popen(
        [sys.executable, "-I", "-S", "-B", "-c", _LISTENER, str(source)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        port = int(process.stdout.readline())
        planned = deliveries(rate, seconds, int(time.time() * 1000))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=time_limit)
        sent = 0
        began = time.monotonic()
        for due, body, completed in planned:
            now = time.monotonic() - began
            if now > time_limit:
                break
            if due > now:
                time.sleep(due - now)
            connection.request("POST", "/", body, {"Content-Type": "application/json"})
            connection.getresponse().read()
            sent += completed
        wall = time.monotonic() - began
        connection.close()
        process.stdin.write("done\n")
        process.stdin.flush()
        figures = json.loads(process.stdout.readline())
    finally:
        process.kill()
        process.wait()
    return Outcome(
        name,
        rate,
        sent,
        int(rate * seconds),
        wall,
        figures["cpu_s"],
        figures["invocations"],
        figures["max_concurrent"],
        figures["peak_rss_mb"],
    )


def baseline_source(revision: str, into: Path) -> Path:
    """The package as it was at ``revision`` (``git archive``), unpacked under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "src/concurrency_observer"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def main() -> None:
    """Run every implementation at every rate, side by side."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rates", default="1000,5000", help="invocations per second, comma-separated"
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="traffic at each rate")
    parser.add_argument("--time-limit", type=float, default=40.0, help="a run stops after this")
    parser.add_argument("--baseline", help="a git revision to measure beside this checkout")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        sources = {"this checkout": ROOT / "src"}
        if options.baseline:
            sources[f"baseline {options.baseline}"] = baseline_source(options.baseline, Path(work))
        print(
            f"{'implementation':24} {'rate/s':>7} {'sent':>13} {'wall s':>7} {'CPU s':>7} "
            f"{'of a core':>9} {'counted':>8} {'peak':>5} {'RSS MB':>7}"
        )
        for rate in (int(r) for r in options.rates.split(",")):
            for name, source in sources.items():
                outcome = run(name, source, rate, options.seconds, options.time_limit)
                print(
                    f"{name:24} {rate:>7} {outcome.sent:>6}/{outcome.planned:<6} "
                    f"{outcome.wall_s:>7.1f} {outcome.cpu_s:>7.2f} {outcome.core_share:>8.0%} "
                    f"{outcome.invocations:>8} {outcome.max_concurrent:>5} "
                    f"{outcome.peak_rss_mb:>7.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
