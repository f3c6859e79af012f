"""A CPU quota for one whole environment: a cgroup with a CFS bandwidth limit, as Lambda sets one.

Lambda gives a function CPU in proportion to its memory, 1/14 of a core at 128 MB outside the
on-demand init's boost. Here each environment's process tree (``unshare``, the RIE, and through
it the runtime and the extensions it starts later) goes into a cgroup of its own whose quota is
that share: ``cpu.max`` under cgroup v2 when the unified hierarchy has the ``cpu`` controller,
else ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` of cgroup v1 (the same CFS bandwidth control).
Needs root (or a delegated cgroup); ``available`` says why not when it cannot be done.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000


def _hierarchy() -> tuple[Path, str] | None:
    """Where to make a CPU-limited cgroup and which interface it has (``v2`` or ``v1``)."""
    controllers = CGROUP_ROOT / "cgroup.controllers"
    if controllers.exists() and "cpu" in controllers.read_text().split():
        return CGROUP_ROOT, "v2"
    if (CGROUP_ROOT / "cpu" / "cpu.cfs_quota_us").exists():
        return CGROUP_ROOT / "cpu", "v1"
    return None


def available() -> str | None:
    """``None`` when a quota can be set here, else why not (one line)."""
    found = _hierarchy()
    if found is None:
        return "no cgroup with the cpu controller (neither cgroup v2 cpu.max nor v1 cfs quota)"
    if not os.access(found[0], os.W_OK):
        return f"{found[0]} is not writable (root or a delegated cgroup is needed)"
    return None


class CpuQuota:
    """One cgroup limited to ``fraction`` of a core; processes are moved in with ``add``."""

    def __init__(self, name: str, fraction: float) -> None:
        found = _hierarchy()
        if found is None:
            raise OSError(available())
        parent, self.version = found
        self.path = parent / name
        self.path.mkdir()
        quota = max(1000, round(PERIOD_US * fraction))
        if self.version == "v2":
            (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))

    def add(self, pids: list[int]) -> None:
        """Move ``pids`` (processes that exist now) into the cgroup; their children follow."""
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):  # it has exited meanwhile
                (self.path / "cgroup.procs").write_text(str(pid))

    def close(self) -> None:
        """Remove the cgroup (its processes have exited by now)."""
        with contextlib.suppress(OSError):
            self.path.rmdir()
