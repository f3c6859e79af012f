"""What the study engine drives and reads, as protocols: the provisioned concurrency of one
alias (``ProvisioningTarget``), the init count (``InitCounter``), the shutdowns' usage
(``UsageCounter``) and where it reports (``StudyListener``). ``aws/experiment.py`` implements them
over boto3, ``local/provisioning.py`` over the local fleet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

ReadyState = Literal["READY", "IN_PROGRESS", "FAILED"]


@dataclass(frozen=True)
class WaitProgress:
    """One step of a wait, for a progress display: ``completed`` of ``total`` (None: unknown)."""

    label: str
    completed: float
    total: float | None
    detail: str = ""


ProgressCallback = Callable[[WaitProgress], None]


@dataclass(frozen=True)
class ProvisioningStatus:
    """What the control plane says about the configuration being brought up."""

    state: ReadyState
    requested: int
    allocated: int
    reason: str = ""


@dataclass(frozen=True)
class ReadyResult:
    """The configuration reached READY: how many environments were allocated, after how long."""

    allocated: int
    seconds: float


class ProvisioningTarget(Protocol):
    """The provisioned concurrency of one alias (or version) of one function."""

    @property
    def description(self) -> str:
        """A short name for messages, such as ``my-function:live``."""
        ...

    def read_config(self) -> int | None:
        """The provisioned concurrency requested now, or None when there is no configuration."""
        ...

    def set_provisioned(self, level: int) -> None:
        """Ask for ``level`` provisioned environments (returns before they are ready)."""
        ...

    def wait_ready(self, level: int, timeout: float, on_progress: ProgressCallback) -> ReadyResult:
        """Block until the configuration is READY; raise ``StudyError`` on FAILED or timeout."""
        ...

    def remove(self) -> None:
        """Remove the configuration (no error if there is none)."""
        ...

    def restore(self, original: int | None) -> str:
        """Put ``original`` back (None: no configuration) and say, in one line, what was done."""
        ...


class InitCounter(Protocol):
    """Counts environments initialized for provisioned concurrency on the target's function."""

    @property
    def resolution_seconds(self) -> float:
        """The granularity of the count's time window (60 for CloudWatch minutes, 0 if exact)."""
        ...

    def count(self, since: datetime) -> int:
        """``EnvironmentInit`` with InitType ``provisioned-concurrency`` from ``since`` to now."""
        ...


@dataclass(frozen=True)
class Usage:
    """Provisioned environments shut down since a start, and how many of them were ever invoked."""

    shut_down: int
    invoked: int


class UsageCounter(Protocol):
    """Reads how the provisioned environments of a repeat were used, from their shutdowns."""

    def usage(self, since: datetime) -> Usage:
        """Provisioned ``EnvironmentShutdown`` from ``since`` to now, and those ever invoked
        (``FirstInvoke`` prompt or delayed)."""
        ...


class StudyListener(Protocol):
    """Where the engine reports what it does: one-line notes and progress of the waits."""

    def note(self, message: str) -> None:
        """Report a step in one line."""
        ...

    def progress(self, update: WaitProgress) -> None:
        """Report the progress of the current wait."""
        ...
