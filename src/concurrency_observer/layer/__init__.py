"""Build the Lambda layer zip: the launcher in ``extensions/`` and the stdlib-only code beside it.

Layout (docs/design.md, "Package boundaries")::

    extensions/concurrency-observer        executable launcher; its file name is the extension name
    concurrency-observer/bootstrap.py      puts the code on sys.path and runs the extension
    concurrency-observer/fallback.sh       bash fallback (executable): no python3 3.10+
    concurrency-observer/concurrency_observer/{__init__,schema,environment_record}.py
    concurrency-observer/concurrency_observer/extension/**.py

The zip is deterministic (sorted entries, fixed timestamps and modes), so the same source and the
same building interpreter always give the same bytes and the same CodeSha256 when published.

Bytecode: the launcher runs Python with ``-B`` on a read-only ``/opt``, so without ``__pycache__``
every cold start compiles the sources again (15-25 ms when they were half their present size, as
much as the whole floor extension costs). The layer therefore carries ``unchecked-hash`` ``.pyc``
files compiled by the building interpreter: a Lambda runtime of the same minor version loads them
without even a stat of the source; any other version ignores them (its cache tag differs) and
compiles as before.
"""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

EXTENSION_NAME: Final = "concurrency-observer"
LAUNCHER_PATH: Final = f"extensions/{EXTENSION_NAME}"
CODE_DIR: Final = EXTENSION_NAME
FALLBACK_PATH: Final = f"{CODE_DIR}/fallback.sh"
DEFAULT_OUTPUT: Final = Path("dist") / f"{EXTENSION_NAME}-layer.zip"

# 1980-01-01, the earliest time a zip entry can hold: a fixed stamp makes the zip reproducible.
_FIXED_DATE_TIME: Final = (1980, 1, 1, 0, 0, 0)
_EXECUTABLE: Final = 0o755
_REGULAR: Final = 0o644

_PACKAGE_ROOT: Final = Path(__file__).resolve().parent.parent  # src/concurrency_observer
_TEMPLATES: Final = Path(__file__).resolve().parent


@dataclass(frozen=True)
class LayerFile:
    """One entry of the layer: its path inside the zip, its bytes and its Unix mode."""

    arcname: str
    content: bytes
    mode: int


@dataclass(frozen=True)
class BuiltLayer:
    """What ``build_layer`` wrote."""

    path: Path
    sha256: str
    size: int
    entries: tuple[str, ...]


def _package_sources() -> Iterator[tuple[str, Path]]:
    """The modules that run inside Lambda: the package marker, the schema and the extension."""
    yield "concurrency_observer/__init__.py", _PACKAGE_ROOT / "__init__.py"
    yield "concurrency_observer/schema.py", _PACKAGE_ROOT / "schema.py"
    yield "concurrency_observer/environment_record.py", _PACKAGE_ROOT / "environment_record.py"
    extension_dir = _PACKAGE_ROOT / "extension"
    for source in sorted(extension_dir.rglob("*.py")):
        yield f"concurrency_observer/{source.relative_to(_PACKAGE_ROOT).as_posix()}", source


# Compiles each (source, pyc, runtime path) of the JSON list in argv[1]. Run in a fresh, isolated
# interpreter: marshal marks objects by their reference counts, which depend on everything the
# compiling process has loaded, so only a process that always loads the same things writes the
# same bytes (compiling in the caller's process gave other bytes under pytest than in a shell).
_COMPILE_SCRIPT: Final = """
import json, py_compile, sys
for source, pyc, runtime_path in json.loads(sys.argv[1]):
    py_compile.compile(source, cfile=pyc, dfile=runtime_path, doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
"""


def _bytecode(sources: list[tuple[str, Path]]) -> list[LayerFile]:
    """The ``unchecked-hash`` pyc of each module, as this interpreter would cache it under /opt."""
    with tempfile.TemporaryDirectory() as scratch:
        jobs = [
            # The runtime path goes into the code objects, so tracebacks name the file in Lambda.
            (str(source), str(Path(scratch) / f"{index}.pyc"), f"/opt/{arcname}")
            for index, (arcname, source) in enumerate(sources)
        ]
        subprocess.run(
            [sys.executable, "-I", "-S", "-c", _COMPILE_SCRIPT, json.dumps(jobs)],
            check=True,
            capture_output=True,
        )
        files = []
        for (arcname, _source), (_, pyc, _) in zip(sources, jobs, strict=True):
            directory, _, filename = arcname.rpartition("/")
            module = filename.removesuffix(".py")
            cached = f"{directory}/__pycache__/{module}.{sys.implementation.cache_tag}.pyc"
            files.append(LayerFile(cached, Path(pyc).read_bytes(), _REGULAR))
        return files


def layer_files(*, bytecode: bool = True) -> list[LayerFile]:
    """Every file of the layer, sorted by path (with ``bytecode``, the modules' ``.pyc`` too)."""
    files = [
        LayerFile(LAUNCHER_PATH, (_TEMPLATES / "launcher.sh").read_bytes(), _EXECUTABLE),
        LayerFile(f"{CODE_DIR}/bootstrap.py", (_TEMPLATES / "bootstrap.py").read_bytes(), _REGULAR),
        LayerFile(FALLBACK_PATH, (_TEMPLATES / "fallback.sh").read_bytes(), _EXECUTABLE),
    ]
    sources = [(f"{CODE_DIR}/{arcname}", source) for arcname, source in _package_sources()]
    files += [LayerFile(arcname, source.read_bytes(), _REGULAR) for arcname, source in sources]
    if bytecode:
        files += _bytecode(sources)
    return sorted(files, key=lambda f: f.arcname)


def _directories(files: list[LayerFile]) -> list[str]:
    dirs: set[str] = set()
    for f in files:
        parts = f.arcname.split("/")[:-1]
        dirs.update("/".join(parts[: i + 1]) + "/" for i in range(len(parts)))
    return sorted(dirs)


def build_layer(output: Path = DEFAULT_OUTPUT, *, bytecode: bool = True) -> BuiltLayer:
    """Write the layer zip to ``output`` (parents created) and describe it."""
    files = layer_files(bytecode=bytecode)
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        # Directory entries first, so unzip tools and Lambda create them with sane modes.
        for directory in _directories(files):
            info = zipfile.ZipInfo(directory, date_time=_FIXED_DATE_TIME)
            info.create_system = 3  # Unix, so external_attr's mode bits are honoured
            info.external_attr = ((stat.S_IFDIR | _EXECUTABLE) << 16) | 0x10
            archive.writestr(info, b"")
        for f in files:
            info = zipfile.ZipInfo(f.arcname, date_time=_FIXED_DATE_TIME)
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | f.mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, f.content)
    data = output.read_bytes()
    return BuiltLayer(
        path=output,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        entries=tuple(f.arcname for f in files),
    )


def extract_layer(archive_path: Path, destination: Path) -> Path:
    """Unzip a layer keeping each entry's mode (``ZipFile.extractall`` drops the executable bit).

    Used by the local harness, which bind-mounts the result on ``/opt`` like Lambda does.
    """
    destination.mkdir(parents=True, exist_ok=True)
    root = destination.resolve()
    with zipfile.ZipFile(archive_path) as archive:
        for info in archive.infolist():
            target = (destination / info.filename).resolve()
            if not target.is_relative_to(root):
                raise ValueError(f"layer entry escapes the destination: {info.filename!r}")
            mode = (info.external_attr >> 16) & 0o777
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                target.chmod(mode or _EXECUTABLE)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
            target.chmod(mode or _REGULAR)
    return destination
