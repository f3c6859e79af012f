"""A hostile environment for the extension alone, under the real RIE, and what to check after.

The function's environment belongs to its user: whatever it holds reaches the extension. To give
the hostile values to the extension only (not to the RIE nor to the function's runtime), a copy of
the layer gets a wrapper in ``extensions/``: it adds and removes variables with ``env`` and execs
the real launcher, moved to ``real/`` (the same depth, so its ``../concurrency-observer`` is the
layer's code). No shell sees the hostile values before the launcher does, and the extension still
registers under the launcher's file name, the wrapper's.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from concurrency_observer import environment_record, schema
from concurrency_observer.layer import EXTENSION_NAME, LAUNCHER_PATH
from concurrency_observer.local.environment_settings import (
    DUMMY_SECRET_ACCESS_KEY,
    DUMMY_SESSION_TOKEN,
)

REAL_LAUNCHER_DIR = "real"  # where the copy keeps the real launcher, beside extensions/
ENV = "/usr/bin/env"
# The lines of an environment's output that are not the extension's, nor its records: the RIE's
# own (a timestamp and "(rapid)"), and the platform's START, END and REPORT lines.
_PLATFORM_LINE = re.compile(
    r"\d\d \w{3} \d{4} \d\d:\d\d:\d\d,\d{3} \[\w+\] \(rapid\) |(START|END|REPORT) RequestId: "
)
LOG_PREFIX = "[concurrency-observer] "
SECRETS = (DUMMY_SECRET_ACCESS_KEY, DUMMY_SESSION_TOKEN)


def hostile_layer(layer_dir: Path, destination: Path, environ: Mapping[str, str | None]) -> Path:
    """A copy of ``layer_dir`` whose extension sees ``environ`` on top of the environment's
    (``None``: the variable removed)."""
    copy = Path(shutil.copytree(layer_dir, destination, symlinks=True))
    launcher = copy / LAUNCHER_PATH
    real = copy / REAL_LAUNCHER_DIR / EXTENSION_NAME
    real.parent.mkdir()
    launcher.rename(real)
    arguments = [ENV]
    arguments += [f"-u{name}" for name, value in environ.items() if value is None]
    arguments += [f"{name}={value}" for name, value in environ.items() if value is not None]
    arguments.append(f"/opt/{REAL_LAUNCHER_DIR}/{EXTENSION_NAME}")
    launcher.write_text(f'#!/bin/sh\nexec {shlex.join(arguments)} "$@"\n')
    launcher.chmod(0o755)
    return copy


@dataclass(frozen=True)
class Output:
    """An environment's output, sorted: records, the extension's lines, and anything else."""

    text: str
    documents: list[dict[str, object]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, text: str) -> Output:
        """Sort each line of ``text``."""
        output = cls(text)
        for line in text.splitlines():
            if line.startswith(LOG_PREFIX):
                output.lines.append(line)
            elif _PLATFORM_LINE.match(line) or not line.strip():
                continue
            elif (document := _record(line)) is not None:
                output.documents.append(document)
            else:
                output.foreign.append(line)
        return output

    def count(self, metric: str) -> int:
        """How many EMF documents carry ``metric`` (one per record)."""
        return sum(1 for d in self.documents if "_aws" in d and metric in d)

    @property
    def inits(self) -> int:
        """Init records written."""
        return self.count(schema.ENVIRONMENT_INIT)

    @property
    def shutdowns(self) -> int:
        """Shutdown records written."""
        return self.count(schema.ENVIRONMENT_SHUTDOWN)

    def secrets_shown(self, secrets: tuple[str, ...] = ()) -> list[str]:
        """Which of the environment's secrets (and ``secrets``) appear anywhere in the output."""
        return [s for s in (*SECRETS, *secrets) if s in self.text]


def _record(line: str) -> dict[str, object] | None:
    """The EMF document or environment record on ``line``, else ``None``."""
    try:
        document = json.loads(line)
    except ValueError:
        return None
    if isinstance(document, dict) and (
        "_aws" in document or environment_record.MARKER_KEY in document
    ):
        return document
    return None
