"""Where an extension's time before its first ``/event/next`` goes: start to Register, Register to
``/next``, each extension alone against a local Extensions API.

``init_path`` measures what each engine adds to a whole init under the RIE, where the runtime's
own init hides part of it and a busy machine blurs the rest. This splits the extension's side of
that into its two parts, which it pays differently:

- **start to Register**: the launcher's start up to its Register call. Lambda starts the runtime
  only once every extension has registered, so this is paid in full by every init;
- **Register to /next**: from Register's answer to the extension's first ``/event/next``. It runs
  beside the runtime's init, and the init ends when both are done.

Each run: a mount namespace (``unshare``) gets the layer on ``/opt`` read-only and Python as
``/var/lang/bin/python3``, as Lambda's Python runtimes have them, and optionally bash over
``/bin/sh`` (``--sh-is-bash``, as on Amazon Linux); the namespace's shell writes one byte to a pipe
and ``exec``s the launcher; the time from that byte to Register is "start to Register". The local
API (a threaded HTTP server on 127.0.0.1 in this process) answers Register, the Telemetry ``PUT``
with 200 and the first ``/event/next`` with SHUTDOWN. Cases, interleaved round by round:

- ``standin``: the 22-line bash extension (``benchmarks/standin_layer``), the yardstick;
- ``handoff-floor``: the stand-in's register, then ``exec python3 -I -S -B`` of a ``/next`` loop;
- ``bash``, ``python``, ``notelemetry``: our layer from this checkout with the shell engine, the
  Python engine (``emf`` sink, Telemetry on), and the Python engine with the Telemetry API off;
- ``today``: the Python engine of another git ref's layer (``--baseline``, ``main`` by default).

    .venv/bin/python -m benchmarks.front_door_timeline --rounds 60
    .venv/bin/python -m benchmarks.front_door_timeline --rounds 60 --sh-is-bash --baseline HEAD~1

Prints medians in ms. Exit status 0, or 2 on a setup error.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from benchmarks.init_path import HANDOFF_FLOOR_LAYER, STANDIN_LAYER, layer_of_ref
from concurrency_observer.layer import build_layer, extract_layer
from concurrency_observer.local import rie
from concurrency_observer.local.sandbox_mounts import (
    MOUNT_AND_EXEC,
    SH_IS_BASH,
    lambda_python_commands,
)

CASES = ("standin", "handoff-floor", "bash", "python", "notelemetry", "today")
EXTENSION_ID = "0f6f7e3e-5c2a-4b8e-9d1c-2a7b3c4d5e6f"
SHUTDOWN = b'{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":0}'
RUN_TIMEOUT_S = 20


@dataclass(frozen=True)
class Case:
    """A layer, the launcher's file name in it, and the settings the extension sees."""

    name: str
    layer: Path
    launcher: str
    settings: dict[str, str] = field(default_factory=dict)


@dataclass
class Timeline:
    """One run's moments (time.monotonic(), s), as this process saw them."""

    exec_at: float | None = None  # the namespace's shell about to exec the launcher
    register_at: float | None = None  # Register received
    answered_at: float | None = None  # Register's answer sent
    next_at: float | None = None  # the first /event/next received
    done: threading.Event = field(default_factory=threading.Event)


class LocalApi:
    """The Extensions and Telemetry APIs of one run at a time, on 127.0.0.1."""

    def __init__(self) -> None:
        self.timeline = Timeline()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def _read_body(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_POST(self) -> None:
                now = time.monotonic()
                self._read_body()
                timeline = api.timeline
                if self.path.endswith("/register"):
                    timeline.register_at = now
                    body = b'{"functionName":"bench","functionVersion":"$LATEST","handler":"h"}'
                    self._answer(200, body, {"Lambda-Extension-Identifier": EXTENSION_ID})
                    timeline.answered_at = time.monotonic()
                else:  # init/error, exit/error
                    self._answer(202, b"{}", {})

            def do_PUT(self) -> None:  # the Telemetry API's subscription
                self._read_body()
                self._answer(200, b"OK", {})

            def do_GET(self) -> None:
                timeline = api.timeline
                if timeline.next_at is None:
                    timeline.next_at = time.monotonic()
                self._answer(200, SHUTDOWN, {})
                timeline.done.set()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.address = f"127.0.0.1:{self._server.server_address[1]}"

    @contextmanager
    def serving(self) -> Iterator[LocalApi]:
        """Serve in a thread for the duration of the block."""
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


def namespace_command(case: Case, sh_is_bash: bool, signal_fd: int) -> list[str]:
    """unshare, the mounts, one byte on ``signal_fd`` (closed then), then exec of the launcher."""
    setup = lambda_python_commands(sys.executable, var_is_tmpfs=False)
    if sh_is_bash:
        setup += SH_IS_BASH
    launcher = f"/opt/extensions/{case.launcher}"
    script = setup + MOUNT_AND_EXEC.replace(
        'exec "$@"', f'printf x >&{signal_fd} && exec "$@" {signal_fd}>&-'
    )
    unshare = shutil.which("unshare") or "unshare"
    return [
        unshare,
        *rie.unshare_flags(),
        "--",
        "/bin/sh",
        "-c",
        script,
        "sh",
        str(case.layer),
        launcher,
    ]


def run_once(api: LocalApi, case: Case, sh_is_bash: bool) -> Timeline:
    """One extension from its exec to its first /event/next (answered with SHUTDOWN)."""
    api.timeline = timeline = Timeline()
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_REGION": "us-east-1",
        "CONCURRENCY_OBSERVER_SINK": "emf",
        **case.settings,
    }
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        namespace_command(case, sh_is_bash, write_end),
        env=env,
        pass_fds=(write_end,),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        if os.read(read_end, 1):
            timeline.exec_at = time.monotonic()
        timeline.done.wait(RUN_TIMEOUT_S)
        process.wait(RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    finally:
        os.close(read_end)
    return timeline


def _ms(later: float | None, earlier: float | None) -> float | None:
    return None if later is None or earlier is None else (later - earlier) * 1000


SPANS = (("register_at", "exec_at"), ("next_at", "answered_at"), ("next_at", "exec_at"))


def print_table(runs: dict[str, list[Timeline]]) -> None:
    """Each case's medians of its three spans, and how many runs reached /next."""
    print(f"{'case':<14} {'start→Register':>15} {'Register→/next':>15} {'start→/next':>12}  runs")
    for name, timelines in runs.items():
        columns = []
        for later, earlier in SPANS:
            values = [
                value
                for t in timelines
                if (value := _ms(getattr(t, later), getattr(t, earlier))) is not None
            ]
            columns.append(f"{statistics.median(values):.2f}" if values else "-")
        complete = f"{sum(t.next_at is not None for t in timelines)}/{len(timelines)}"
        print(f"{name:<14} {columns[0]:>15} {columns[1]:>15} {columns[2]:>12}  {complete}")


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print each case's medians."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.front_door_timeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=40, help="runs of each case (40)")
    parser.add_argument("--cases", default=",".join(CASES), help="subset of " + ", ".join(CASES))
    parser.add_argument("--baseline", default="main", help="git ref of the 'today' case (main)")
    parser.add_argument("--sh-is-bash", action="store_true", help="bash over /bin/sh")
    args = parser.parse_args(argv)
    chosen = [name for name in CASES if name in args.cases.split(",")]
    try:
        rie.check_host()
        with tempfile.TemporaryDirectory(prefix="front-door-") as scratch:
            workdir = Path(scratch)
            ours = extract_layer(build_layer(workdir / "ours.zip").path, workdir / "ours")
            today = layer_of_ref(args.baseline, workdir) if "today" in chosen else ours
            off = {"CONCURRENCY_OBSERVER_TELEMETRY": "off"}
            cases = {
                "standin": Case("standin", STANDIN_LAYER, "standin-extension"),
                "handoff-floor": Case("handoff-floor", HANDOFF_FLOOR_LAYER, "handoff-floor"),
                "bash": Case(
                    "bash", ours, "concurrency-observer", {"CONCURRENCY_OBSERVER_ENGINE": "bash"}
                ),
                "python": Case("python", ours, "concurrency-observer"),
                "notelemetry": Case("notelemetry", ours, "concurrency-observer", off),
                "today": Case("today", today, "concurrency-observer"),
            }
            order = [cases[name] for name in chosen]
            runs: dict[str, list[Timeline]] = {name: [] for name in chosen}
            with LocalApi().serving() as api:
                for index in range(-1, args.rounds):  # round -1: a warm-up, thrown away
                    shift = index % len(order)
                    for case in order[shift:] + order[:shift]:
                        timeline = run_once(api, case, args.sh_is_bash)
                        if index >= 0:
                            runs[case.name].append(timeline)
    except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print_table(runs)
    sh = "bash" if args.sh_is_bash else os.path.realpath("/bin/sh")
    print(f"medians of {args.rounds} rounds, ms; /bin/sh: {sh}; {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
