"""The AWS Lambda Runtime Interface Emulator (RIE) binary, and whether this machine can run it.

The RIE is the Linux binary that AWS ships inside the ``aws-sam-cli`` wheel on PyPI
(``samcli/local/rapid/aws-lambda-rie-<arch>``). ``rie_binary()`` downloads that wheel once with
``pip download --no-deps``, checks the binary against the wheel's own ``RECORD`` hash, and caches
just that file::

    ${XDG_CACHE_HOME:-~/.cache}/concurrency-observer/rie/<sam-cli version>/aws-lambda-rie-<arch>

``CONCURRENCY_OBSERVER_RIE`` names a binary to use instead (offline machines). ``check_host()``
raises ``EnvironmentUnfit`` with one clear line when the local environments cannot run here: not
Linux on x86_64/arm64, no ``unshare``, or neither root nor unprivileged user namespaces.
"""

from __future__ import annotations

import base64
import csv
import functools
import hashlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Final

from concurrency_observer.errors import EnvironmentUnfit

# The aws-sam-cli release whose wheel carries the RIE. Bump deliberately: the RIE's behaviour
# (lazy init, SHUTDOWN on SIGTERM, 2 s deadline) is what docs/design.md describes.
SAM_CLI_VERSION: Final = "1.170.0"
RIE_OVERRIDE_VARIABLE: Final = "CONCURRENCY_OBSERVER_RIE"

# platform.machine() spellings -> the suffix of the binary in the wheel.
_ARCHITECTURES: Final = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "aarch64": "arm64",
    "arm64": "arm64",
}
_WHEEL_DIR: Final = "samcli/local/rapid"
_ELF_MAGIC: Final = b"\x7fELF"
_PIP_TIMEOUT_S: Final = 600


def architecture() -> str:
    """The RIE architecture for this machine (``x86_64`` or ``arm64``), or ``EnvironmentUnfit``."""
    if sys.platform != "linux":
        raise EnvironmentUnfit(
            f"local Lambda environments need Linux (namespaces, the RIE); this is {sys.platform}"
        )
    machine = platform.machine().lower()
    arch = _ARCHITECTURES.get(machine)
    if arch is None:
        raise EnvironmentUnfit(
            f"the Lambda RIE exists for x86_64 and arm64 only; this machine is {machine}"
        )
    return arch


def unshare_flags() -> list[str]:
    """``unshare`` options for a private mount and PID namespace (a user namespace if not root)."""
    flags = ["--mount", "--propagation", "private", "--pid", "--fork", "--kill-child"]
    return flags if os.geteuid() == 0 else ["--map-root-user", *flags]


@functools.cache
def check_host() -> None:
    """Raise ``EnvironmentUnfit`` unless environments can run here (checked once per process)."""
    architecture()
    unshare = shutil.which("unshare")
    if unshare is None:
        raise EnvironmentUnfit("'unshare' not found: install util-linux")
    python = Path(sys.executable).resolve()
    if python.is_relative_to("/opt"):
        # The layer is bind-mounted over /opt inside each environment, hiding the runtime.
        raise EnvironmentUnfit(f"the Python under /opt ({python}) would be hidden by the layer")
    # One real try is cheaper and surer than reading sysctls that differ between distributions.
    probe = subprocess.run(
        [unshare, *unshare_flags(), "true"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if probe.returncode != 0:
        why = probe.stderr.strip().splitlines()[-1:] or ["no reason given"]
        who = "as root" if os.geteuid() == 0 else "without root (user namespaces)"
        raise EnvironmentUnfit(
            f"cannot create mount/PID namespaces {who}: {why[0]} "
            "(run as root, or enable unprivileged user namespaces)"
        )


def cache_dir() -> Path:
    """Where downloaded binaries are kept (``$XDG_CACHE_HOME/concurrency-observer``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "concurrency-observer"


def rie_binary(version: str = SAM_CLI_VERSION, cache: Path | None = None) -> Path:
    """The path of a verified, executable RIE for this machine, downloading it on first use."""
    override = os.environ.get(RIE_OVERRIDE_VARIABLE)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise EnvironmentUnfit(f"{RIE_OVERRIDE_VARIABLE}={override} is not an executable file")
        return path
    arch = architecture()
    name = f"aws-lambda-rie-{arch}"
    target = (cache or cache_dir()) / "rie" / version / name
    if target.is_file() and os.access(target, os.X_OK) and _is_elf(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rie-download-") as scratch:
        wheel = _download_wheel(version, Path(scratch))
        content = _verified_member(wheel, f"{_WHEEL_DIR}/{name}")
        # Write beside the target and rename, so a concurrent caller never runs half a file.
        partial = target.with_name(f".{name}.{os.getpid()}.partial")
        partial.write_bytes(content)
        partial.chmod(0o755)
        partial.replace(target)
    return target


def _is_elf(path: Path) -> bool:
    with path.open("rb") as binary:
        return binary.read(4) == _ELF_MAGIC


def _download_wheel(version: str, into: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(into),
        f"aws-sam-cli=={version}",
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise EnvironmentUnfit(f"downloading aws-sam-cli=={version} timed out") from exc
    wheels = sorted(into.glob("aws_sam_cli-*.whl"))
    if result.returncode != 0 or not wheels:
        errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
        reason = (errors or result.stderr.strip().splitlines()[-1:] or ["no wheel"])[-1]
        raise EnvironmentUnfit(
            f"cannot download aws-sam-cli=={version} (it carries the Lambda RIE): {reason}; "
            f"or point {RIE_OVERRIDE_VARIABLE} at an aws-lambda-rie binary"
        )
    return wheels[0]


def _verified_member(wheel: Path, member: str) -> bytes:
    """The bytes of ``member``, checked against the sha256 the wheel's RECORD gives for it."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        if member not in names:
            raise EnvironmentUnfit(f"{wheel.name} has no {member}: the RIE moved inside the wheel")
        record_name = next((n for n in names if n.endswith(".dist-info/RECORD")), None)
        if record_name is None:
            raise EnvironmentUnfit(f"{wheel.name} has no RECORD to verify the RIE against")
        record = archive.read(record_name).decode()
        content = archive.read(member)
    expected = next(
        (row[1] for row in csv.reader(io.StringIO(record)) if row and row[0] == member), ""
    )
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
    if expected != f"sha256={digest}" or not content.startswith(_ELF_MAGIC):
        raise EnvironmentUnfit(f"{member} in {wheel.name} does not match its RECORD hash")
    return content
