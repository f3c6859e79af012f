"""The processes of an environment's session, read from ``/proc``.

Every process an environment starts shares the session of its ``unshare`` (its pid): what is
left in it is what did not stop, and unshare's only child is the RIE.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def processes_in_session(session_id: int) -> list[int]:
    """The pids (not zombies) whose session id is ``session_id``, read from ``/proc``."""
    return _pids_where(lambda fields: fields[0] != "Z" and int(fields[3]) == session_id)


def _pids_where(predicate: Callable[[list[str]], bool]) -> list[int]:
    """Pids whose ``/proc/PID/stat`` fields after the command (state ppid pgrp sid ...) match."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if predicate(stat.rsplit(")", 1)[1].split()):
            found.append(int(entry.name))
    return sorted(found)


def only_child(pid: int) -> int | None:
    """The single child of ``pid`` (unshare's forked child is the RIE), or ``None`` yet."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:  # a kernel without CONFIG_PROC_CHILDREN: scan /proc instead
        children = [str(p) for p in _pids_where(lambda fields: int(fields[1]) == pid)]
    except OSError:
        return None
    return int(children[0]) if children else None
