"""The study's one error: it cannot go on (shown as one line, like every ``UserError``)."""

from __future__ import annotations

from concurrency_observer.errors import UserError


class StudyError(UserError):
    """The study cannot go on (a wait timed out, provisioning failed, the saved state disagrees)."""
