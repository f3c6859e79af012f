"""What Linux tells about a process: its children, command line, resident memory, mapped files.

The benchmark reads the extension's memory the way Lambda's own accounting sees it (resident set
size), from ``/proc/<pid>/status``, right after the first invoke.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Memory:
    """A process's resident set now (``rss_kb``) and at its peak (``hwm_kb``), in KiB."""

    rss_kb: int
    hwm_kb: int


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (empty if it has exited)."""
    found: list[int] = []
    for task in (PROC / str(pid) / "task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return sorted(set(found))


def command_line(pid: int) -> list[str]:
    """The argv of ``pid`` (empty if it has exited or is a zombie)."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def memory(pid: int) -> Memory:
    """VmRSS and VmHWM of ``pid``; raises ``OSError`` if it has exited."""
    fields: dict[str, int] = {}
    for line in (PROC / str(pid) / "status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(rest.split()[0])  # "  10400 kB"
    return Memory(rss_kb=fields["VmRSS"], hwm_kb=fields["VmHWM"])


def cpu_ms(pid: int) -> float:
    """CPU time ``pid`` has run so far, in ms (``/proc/PID/schedstat``, ns resolution).

    The launcher ``exec``s python3 in the same process, so this includes the shell's share.
    Unlike wall-clock init time it does not grow when other work shares the machine.
    """
    return int((PROC / str(pid) / "schedstat").read_text().split()[0]) / 1e6


def maps_module(pid: int, fragment: str) -> bool:
    """Whether a file whose path contains ``fragment`` is mapped into ``pid`` (e.g. ``_ssl.``)."""
    try:
        return fragment in (PROC / str(pid) / "maps").read_text()
    except OSError:
        return False


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, breadth first."""
    found: list[int] = []
    frontier = [pid]
    while frontier:
        below = [child for parent in frontier for child in children(parent)]
        found += below
        frontier = below
    return found


def extension_processes(root_pid: int) -> list[int]:
    """The external extensions under ``root_pid`` (the RIE, or the ``unshare`` around it).

    An extension is a process run from the layer on ``/opt``: the launcher ``exec``s python3
    with the layer's script, so the argv names ``/opt/``; the runtime (awslambdaric) does not.
    """
    return [pid for pid in descendants(root_pid) if any("/opt/" in a for a in command_line(pid))]


def python_rss_kb(python: str, code: str, env: Mapping[str, str] | None = None) -> int:
    """VmRSS (KiB) at the end of ``python -I -S -c code``, as the extension's launcher starts it."""
    probe = f"{code}\nprint(open('/proc/self/status').read())"
    status = subprocess.run(
        [python, "-I", "-S", "-B", "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS in the status of {python}")
