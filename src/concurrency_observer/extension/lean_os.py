"""What the engine needs of ``os`` before its first ``/event/next``, from the built-in ``posix``.

``import os`` costs about 1 ms of CPU at every cold start (``os`` itself, and the
``_collections_abc`` it loads for ``os.environ``). Before the first ``/event/next`` that time is
taken from the runtime's own init, which runs beside it on the same cores (docs/benchmarks.md,
"The init path"). ``posix``, the module ``os`` wraps on Linux, is built into the interpreter and
loaded at its start: here are its few calls the engine makes, the environment decoded as
``os.environ`` decodes it, and the path arithmetic of ``posixpath`` the engine uses. What runs only
after the first ``/event/next`` (the sinks, the shutdown) may import ``os`` as usual.
"""

from __future__ import annotations

import posix
import sys
from posix import X_OK, access, close, execv, urandom, write

__all__ = [
    "X_OK", "access", "basename", "close", "dirname", "environ", "execv", "getenv", "urandom",
    "write",
]  # fmt: skip


def environ() -> dict[str, str]:
    """The process's environment as text, decoded as ``os.environ`` decodes it (the file system
    encoding, undecodable bytes kept as surrogates)."""
    encoding = sys.getfilesystemencoding()
    return {
        key.decode(encoding, "surrogateescape"): value.decode(encoding, "surrogateescape")
        for key, value in posix.environ.items()
    }


def getenv(name: str) -> str | None:
    """One variable of the environment, decoded as ``environ`` decodes it (without decoding the
    rest); ``None`` when it is not set."""
    value = posix.environ.get(name.encode())
    return None if value is None else value.decode(sys.getfilesystemencoding(), "surrogateescape")


def basename(path: str) -> str:
    """``os.path.basename``: what follows the last ``/``."""
    return path[path.rfind("/") + 1 :]


def dirname(path: str) -> str:
    """``os.path.dirname``: up to the last ``/``, trailing slashes dropped unless all it is."""
    head = path[: path.rfind("/") + 1]
    if head and head != "/" * len(head):
        head = head.rstrip("/")
    return head


def absolute(path: str) -> str:
    """``path`` from the root: relative ones joined to the working directory (not normalized)."""
    return path if path.startswith("/") else f"{posix.getcwd()}/{path}"
