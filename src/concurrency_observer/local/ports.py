"""Free TCP ports on 127.0.0.1 for the RIE and the moto server.

The kernel picks a port that is free now (bind to port 0); a process-wide registry makes sure two
environments started by this process at the same time never get the same one. Another process can
still take a port between the pick and the RIE's bind, so callers retry on "address already in use"
(``LambdaEnvironment.start`` does).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path
from typing import Final

LOOPBACK: Final = "127.0.0.1"
_TCP_LISTEN: Final = "0A"  # the LISTEN state in /proc/net/tcp

_lock = threading.Lock()
_reserved: set[int] = set()


def free_port() -> int:
    """A loopback port free right now and not handed out by this process since its release."""
    with _lock:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((LOOPBACK, 0))
                port = int(probe.getsockname()[1])
            if port not in _reserved:
                _reserved.add(port)
                return port


def release_port(port: int) -> None:
    """Give ``port`` back once its listener is gone."""
    with _lock:
        _reserved.discard(port)


def listened_by(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket listening on ``127.0.0.1:port``.

    Stricter than ``is_listening``: if another process took the port first, the RIE fails to bind
    and exits, but a connection to the port would still succeed. Read from ``/proc``; where
    another user's process cannot be inspected, falls back to ``is_listening``.
    """
    try:
        inode = _listening_inode(port)
        if inode is None:
            return False
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except PermissionError:
        return is_listening(port)
    except OSError:  # the process is gone: it holds nothing
        return False
    wanted = f"socket:[{inode}]"
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(fd) == wanted:
                return True
    return False


def _listening_inode(port: int) -> str | None:
    """The inode of the socket listening on 127.0.0.1:port (``/proc/net/tcp``), if any."""
    local = f"0100007F:{port:04X}"  # 127.0.0.1 in the kernel's little-endian hex
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        if fields[1] == local and fields[3] == _TCP_LISTEN:
            return fields[9]
    return None


def is_listening(port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on ``127.0.0.1:port``."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False
