"""The CLI as users install it: the wheel, without extras, in a fresh virtualenv.

Built with ``pip wheel`` (as pipx would) and installed with its declared dependencies only, the
command must build the same layer, byte for byte, as the checkout does, and the commands that
need the ``local`` extra must say so in one line instead of failing on a missing module. Both
builds use the same interpreter: the layer's ``.pyc`` files depend on it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from concurrency_observer.layer import build_layer

pytestmark = pytest.mark.install

ROOT = Path(__file__).resolve().parents[2]
INSTALL_HINT = "pip install 'concurrency-observer[local]'"


def run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` without this venv's variables (``VIRTUAL_ENV``, ``PYTHON*``) leaking in."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run(
        [str(arg) for arg in argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environ,
        timeout=240,
        check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` directory of a fresh venv with the wheel of this checkout, no extras."""
    scratch = tmp_path_factory.mktemp("wheel")
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", scratch, ROOT)
    assert built.returncode == 0, built.stderr
    (wheel,) = scratch.glob("concurrency_observer-*.whl")
    # The interpreter behind this test's venv, so both layers are compiled by the same Python.
    venv.EnvBuilder(with_pip=True).create(scratch / "venv")
    bin_dir = scratch / "venv" / "bin"
    constraints = ROOT / "constraints.txt"  # the pinned versions: pip's cache already has them
    done = run(bin_dir / "python", "-m", "pip", "install", "-q", "-c", constraints, wheel)
    assert done.returncode == 0, done.stderr
    return bin_dir


def test_installed_without_extras(installed: Path) -> None:
    """The fresh venv has the base dependencies and not the local extra's."""
    probe = (
        "import importlib.util as u; print([m for m in ('moto', 'awslambdaric') if u.find_spec(m)])"
    )
    result = run(installed / "python", "-c", probe)
    assert result.stdout.strip() == "[]", result


def test_the_installed_cli_builds_the_checkouts_layer(installed: Path, tmp_path: Path) -> None:
    """``layer build`` from the wheel writes exactly the bytes the checkout's build writes."""
    command = installed / "concurrency-observer"
    result = run(command, "layer", "build", "--output", "w.zip", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    checkout = build_layer(tmp_path / "checkout.zip")
    assert (tmp_path / "w.zip").read_bytes() == checkout.path.read_bytes()


@pytest.mark.parametrize(
    "argv",
    [["simulate"], ["simulate", "--sink", "emf"], ["experiment", "--local", "--levels", "1"]],
)
def test_local_commands_name_the_extra(installed: Path, tmp_path: Path, argv: list[str]) -> None:
    """Without the local extra, each local command stops with one line: how to install it."""
    result = run(installed / "concurrency-observer", *argv, cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert INSTALL_HINT in lines[0]
    assert "Traceback" not in result.stderr
