"""Settings every test shares: hypothesis profiles that hold on a busy machine.

The suite runs on shared 2-core machines, where a generated example can take seconds of wall
clock for reasons unrelated to the code under test. No property here is about speed, so no
profile has a deadline, and the ``too_slow`` health check (how long generating inputs takes) is
suppressed: it failed fresh-clone runs while other work held the CPU.

- ``dev`` (the default): random examples, as hypothesis intends, so local runs keep exploring.
- ``ci`` (when ``CI`` is set, as CI systems do): the same, derandomized, so a CI failure is not a
  coin toss and reproduces with the same command; ``print_blob`` gives the failing example.

``HYPOTHESIS_PROFILE=dev|ci`` chooses one explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from hypothesis import HealthCheck, settings

_BUSY_MACHINE = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("dev", _BUSY_MACHINE)
settings.register_profile("ci", _BUSY_MACHINE, derandomize=True)


def profile_for(environ: Mapping[str, str]) -> str:
    """The profile to load: ``HYPOTHESIS_PROFILE``, else ``ci`` when ``CI`` is set, else ``dev``."""
    chosen = environ.get("HYPOTHESIS_PROFILE")
    if chosen:
        return chosen
    return "ci" if environ.get("CI", "").strip().lower() not in ("", "0", "false") else "dev"


settings.load_profile(profile_for(os.environ))
