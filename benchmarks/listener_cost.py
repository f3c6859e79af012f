"""What a Telemetry API listener costs at every cold start: ``http.server`` against a raw socket.

Each way runs in a fresh ``python3 -I -S -B`` (as the layer's launcher runs the extension), after
``socket`` and ``json`` (which the extension imports anyway): import, bind 127.0.0.1, listen,
start the serving thread. Prints the resident memory and the time added, medians of a few runs::

    .venv/bin/python -m benchmarks.listener_cost

The extension serves raw non-blocking sockets from one ``select.poll`` loop on ``_thread``
(extension/telemetry_listener.py; before, a thread per connection, accepting on ``_thread``);
docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import statistics
import subprocess
import sys

RUNS = 9
PAUSE_MS = 10.0  # lets the thread reach accept(); subtracted from the time
_PROGRAM = r"""
import time
def rss():
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
import socket, json
base, began = rss(), time.perf_counter()
{body}
time.sleep({pause} / 1000)
print(rss() - base, (time.perf_counter() - began) * 1000 - {pause})
"""
WAYS = {
    "raw socket + _thread (before)": (
        "import _thread\n"
        "server = socket.socket(); server.bind(('127.0.0.1', 0)); server.listen(8)\n"
        "_thread.start_new_thread(server.accept, ())"
    ),
    "poll loop + _thread (ours)": (
        "import _thread, select\n"
        "from time import monotonic\n"
        "server = socket.socket(); server.bind(('127.0.0.1', 0)); server.listen(64)\n"
        "server.setblocking(False); poller = select.poll()\n"
        "poller.register(server.fileno(), select.POLLIN)\n"
        "_thread.start_new_thread(poller.poll, (1000,))"
    ),
    "http.server + threading": (
        "import http.server, threading\n"
        "server = http.server.HTTPServer(('127.0.0.1', 0), http.server.BaseHTTPRequestHandler)\n"
        "threading.Thread(target=server.serve_forever, daemon=True).start()"
    ),
}


def measure(body: str, python: str = sys.executable) -> tuple[float, float]:
    """Median KiB of RSS and milliseconds that ``body`` adds, over ``RUNS`` fresh processes."""
    kib, ms = [], []
    program = _PROGRAM.format(body=body, pause=PAUSE_MS)
    for _ in range(RUNS):
        out = subprocess.run(
            [python, "-I", "-S", "-B", "-c", program], capture_output=True, text=True, check=True
        ).stdout.split()
        kib.append(float(out[0]))
        ms.append(float(out[1]))
    return statistics.median(kib), statistics.median(ms)


def main() -> None:
    """Print one line per way."""
    for name, body in WAYS.items():
        kib, ms = measure(body)
        print(f"{name:30} +{kib / 1024:.2f} MB RSS  +{ms:.1f} ms", flush=True)


if __name__ == "__main__":
    main()
