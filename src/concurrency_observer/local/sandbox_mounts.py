"""The shell that builds an environment's mount namespace before it becomes the RIE.

Each piece is a command followed by ``&&`` that ``LambdaEnvironment`` splices in before the
``exec`` of its mount script: the layer on ``/opt`` (read-only, as Lambda has it), Lambda's
``/var/lang/bin/python3``, bash as ``/bin/sh``, and the paths covered so the environment does
not see them (docs/local.md has the why).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Final

from concurrency_observer.local.environment_settings import LAMBDA_PYTHON_DIR

# Mount the layer read-only on /opt, as Lambda does, then become the RIE. $1 is the layer dir.
MOUNT_AND_EXEC: Final = (
    'layer="$1"; shift; mount --bind "$layer" /opt && mount -o remount,bind,ro /opt && exec "$@"'
)
# Lambda Managed Instances: also a tmpfs on /var (this host has no /var/task) with the task
# directory (holding the runtime's bootstrap) mounted read-only on /var/task. $2 is the task dir.
MOUNT_LMI_AND_EXEC: Final = (
    'layer="$1"; task="$2"; shift 2; mount --bind "$layer" /opt && '
    "mount -o remount,bind,ro /opt && mount -t tmpfs -o mode=755 tmpfs /var && "
    'mkdir /var/task /var/tmp && chmod 1777 /var/tmp && mount --bind "$task" /var/task && '
    'mount -o remount,bind,ro /var/task && exec "$@"'
)


def lambda_python_commands(target: str, var_is_tmpfs: bool) -> str:
    """Shell commands giving the environment ``/var/lang/bin/python3`` (``target``), each followed
    by ``&&``; ``/var`` becomes a tmpfs first unless it is one already (Managed Instances)."""
    tmpfs = "" if var_is_tmpfs else "mount -t tmpfs -o mode=755 tmpfs /var && "
    return (
        f"{tmpfs}mkdir -p {LAMBDA_PYTHON_DIR} /var/tmp && chmod 1777 /var/tmp && "
        f"ln -s {shlex.quote(target)} {LAMBDA_PYTHON_DIR}/python3 && "
    )


# bash over /bin/sh (through the link, if /bin/sh is one): sh is bash, as on Amazon Linux.
SH_IS_BASH: Final = "mount --bind /bin/bash /bin/sh && "


def hide_commands(hidden: tuple[str, ...], empty_dir: Path) -> str:
    """Shell commands that cover each existing path of ``hidden``, each followed by ``&&``."""
    commands = []
    for raw in hidden:
        path = Path(raw)
        if not path.exists():
            continue  # nothing to hide; a mount point must exist
        cover = empty_dir if path.is_dir() else Path("/dev/null")
        commands.append(f"mount --bind {shlex.quote(str(cover))} {shlex.quote(raw)} && ")
    return "".join(commands)
