"""Session fixtures for the end-to-end tests: the RIE, the built layer, a moto CloudWatch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from concurrency_observer.errors import EnvironmentUnfit
from concurrency_observer.layer import build_layer, extract_layer
from concurrency_observer.local import rie
from concurrency_observer.local.cloudwatch import LocalCloudWatch


@pytest.fixture(scope="session")
def rie_path() -> Path:
    """The verified RIE binary (downloaded once, then cached); fails clearly on an unfit host."""
    try:
        rie.check_host()
        return rie.rie_binary()
    except EnvironmentUnfit as exc:
        pytest.fail(f"end-to-end tests cannot run here: {exc}")


@pytest.fixture(scope="session")
def layer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The layer built from this source tree and extracted, ready to mount on /opt."""
    root = tmp_path_factory.mktemp("layer")
    built = build_layer(root / "layer.zip")
    return extract_layer(built.path, root / "opt")


@pytest.fixture(scope="session")
def cloudwatch() -> Iterator[LocalCloudWatch]:
    """One moto CloudWatch server for the session (tests use namespaces of their own)."""
    with LocalCloudWatch() as server:
        yield server
