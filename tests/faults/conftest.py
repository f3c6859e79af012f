"""Fixtures for the fault tests: the same RIE, layer and moto server as the end-to-end suite."""

from __future__ import annotations

# Shared with tests/e2e rather than copied: one way to get the RIE, build the layer, run moto.
from tests.e2e.conftest import cloudwatch, layer_dir, rie_path

__all__ = ["cloudwatch", "layer_dir", "rie_path"]
