"""The hypothesis profiles of tests/conftest.py: no deadline, no too_slow, derandomized in CI."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from tests.conftest import profile_for


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "dev"),
        ({"CI": "true"}, "ci"),
        ({"CI": "1"}, "ci"),
        ({"CI": "false"}, "dev"),
        ({"CI": "true", "HYPOTHESIS_PROFILE": "dev"}, "dev"),
    ],
)
def test_profile_choice(environ: dict[str, str], expected: str) -> None:
    """CI selects the ci profile; HYPOTHESIS_PROFILE overrides."""
    assert profile_for(environ) == expected


@pytest.mark.parametrize("name", ["dev", "ci"])
def test_profiles_hold_on_a_busy_machine(name: str) -> None:
    """Neither profile has a deadline or the too_slow health check."""
    profile = settings.get_profile(name)
    assert profile.deadline is None
    assert HealthCheck.too_slow in profile.suppress_health_check


def test_the_loaded_profile_is_one_of_ours() -> None:
    """The profile in force for this run is a busy-machine one."""
    assert settings.default is not None
    assert settings.default.deadline is None
    assert settings.get_profile("ci").derandomize
