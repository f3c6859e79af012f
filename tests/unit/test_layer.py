"""The layer zip: layout, modes, determinism and bytecode."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from concurrency_observer.layer import (
    CODE_DIR,
    FALLBACK_PATH,
    LAUNCHER_PATH,
    build_layer,
    extract_layer,
)


def _modes(archive: Path) -> dict[str, int]:
    with zipfile.ZipFile(archive) as z:
        return {i.filename: (i.external_attr >> 16) & 0o777 for i in z.infolist()}


def test_layout_has_the_launcher_and_the_code(tmp_path: Path) -> None:
    """The zip holds the executable launcher and the stdlib-only code, nothing of the CLI."""
    built = build_layer(tmp_path / "layer.zip")
    modes = _modes(built.path)
    assert modes[LAUNCHER_PATH] == 0o755
    assert modes[f"{CODE_DIR}/bootstrap.py"] == 0o644
    assert modes[FALLBACK_PATH] == 0o755
    assert f"{CODE_DIR}/concurrency_observer/extension/main.py" in modes
    assert f"{CODE_DIR}/concurrency_observer/schema.py" in modes
    # Only what runs inside Lambda: no CLI, AWS, local or reporting code.
    for forbidden in ("/cli/", "/aws/", "/local/", "/reporting/", "/layer/"):
        assert not [name for name in modes if forbidden in name], forbidden


def test_build_is_deterministic(tmp_path: Path) -> None:
    """Two builds in separate interpreters give the same bytes."""
    first = build_layer(tmp_path / "a.zip")
    script = (
        "import sys; from pathlib import Path; from concurrency_observer.layer import build_layer;"
        "print(build_layer(Path(sys.argv[1])).sha256)"
    )
    second = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "b.zip")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert first.sha256 == second
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_bytecode_is_shipped_and_loaded(tmp_path: Path) -> None:
    """Each module has an unchecked-hash pyc for this interpreter, and the import uses it."""
    built = build_layer(tmp_path / "layer.zip")
    tag = sys.implementation.cache_tag
    pycs = [e for e in built.entries if e.endswith(f".{tag}.pyc")]
    sources = [e for e in built.entries if e.endswith(".py") and not e.endswith("bootstrap.py")]
    assert len(pycs) == len(sources)

    root = extract_layer(built.path, tmp_path / "opt")
    code = root / CODE_DIR
    verbose = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-B",
            "-v",
            "-c",
            f"import sys; sys.path.insert(0, {str(code)!r}); "
            "import concurrency_observer.extension.lifecycle",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    assert f"matches {code}/concurrency_observer/extension/lifecycle.py" in verbose


def test_without_bytecode_only_sources(tmp_path: Path) -> None:
    """``bytecode=False`` leaves the pyc files out."""
    built = build_layer(tmp_path / "layer.zip", bytecode=False)
    assert not [e for e in built.entries if e.endswith(".pyc")]


def test_extract_keeps_the_executable_bit(tmp_path: Path) -> None:
    """Unpacking keeps the launcher and the fallback executable, as Lambda does."""
    root = extract_layer(build_layer(tmp_path / "layer.zip").path, tmp_path / "opt")
    assert (root / LAUNCHER_PATH).stat().st_mode & 0o111
    assert (root / FALLBACK_PATH).stat().st_mode & 0o111


def test_extract_refuses_entries_that_escape(tmp_path: Path) -> None:
    """A zip entry with ``..`` is refused before anything is written outside the destination."""
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../outside.txt", b"x")
    with pytest.raises(ValueError, match="escapes"):
        extract_layer(evil, tmp_path / "dest")
    assert not (tmp_path / "outside.txt").exists()
