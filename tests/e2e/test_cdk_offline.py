"""The CDK example synthesizes with no network at all: jsii and aws-cdk-lib download nothing."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from concurrency_observer.layer import build_layer
from tests.unit.test_cdk_example import problems, synthesize

pytestmark = pytest.mark.e2e

# Run inside the new namespace: name its interfaces on stderr, then run the app as `cdk` would.
_PROBE_THEN_APP = (
    "import runpy, socket, sys; "
    "print('interfaces:', [name for _i, name in socket.if_nameindex()], file=sys.stderr); "
    "sys.path.insert(0, '.'); "
    "runpy.run_path('app.py', run_name='__main__')"
)


def test_the_cdk_example_synthesizes_in_a_network_namespace_of_its_own(tmp_path: Path) -> None:
    """In a new network namespace (loopback only, down), synth succeeds and every function is
    observed: nothing was fetched from anywhere."""
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed, as for every e2e test"
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    layer = build_layer(tmp_path / "layer.zip").path
    template, stderr = synthesize(
        tmp_path / "cdk.out",
        layer,
        command=[unshare, "--net", *user, sys.executable, "-c", _PROBE_THEN_APP],
    )
    assert "interfaces: ['lo']" in stderr
    assert problems(template) == []
