"""The fleet's configuration: impossible values are refused with a one-line error."""

from __future__ import annotations

import pytest

from concurrency_observer.local.fleet_config import FleetConfig, FleetError


def test_config_rejects_impossible_values() -> None:
    """A zero maximum or a factor below 1 is refused with a one-line error."""
    with pytest.raises(FleetError, match="max-environments"):
        FleetConfig(max_environments=0)
    with pytest.raises(FleetError, match="over-provisioning"):
        FleetConfig(over_provisioning=0.5)
