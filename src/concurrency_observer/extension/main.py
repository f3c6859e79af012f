"""Entry point inside Lambda: ``layer/bootstrap.py`` calls ``main()``, which exits the process.

The launcher passes its own file name as the first argument: Lambda knows the extension by the
name of the executable in ``/opt/extensions``, and registering under any other name makes it an
internal extension, which cannot receive SHUTDOWN.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from concurrency_observer.extension.config import Config
from concurrency_observer.extension.event_loop import run
from concurrency_observer.extension.extensions_api import ExtensionsApi
from concurrency_observer.extension.interruptions import Interruptions
from concurrency_observer.extension.log import Logger

DEFAULT_EXTENSION_NAME = "concurrency-observer"
_NAME_MAX = 128


def extension_name(argv: list[str]) -> str:
    """The name to register under: the launcher's file name (``argv[1]``), else the default."""
    if len(argv) > 1:
        name = os.path.basename(argv[1].strip())
        if name and len(name) <= _NAME_MAX and name.isprintable() and " " not in name:
            return name
    return DEFAULT_EXTENSION_NAME


def main(argv: list[str] | None = None) -> None:
    """Run the extension with ``os.environ`` and ``sys.argv``; exits the process."""
    started_wall, started_mono = time.time(), time.monotonic()
    interruptions = Interruptions()
    signal.signal(signal.SIGTERM, interruptions.on_sigterm)
    config, warnings = Config.from_environ(os.environ)
    log = Logger(config.log_level)
    for warning in warnings:
        log.warning(warning)
    if config.runtime_api is None:
        log.error("AWS_LAMBDA_RUNTIME_API is not set: this runs as a Lambda extension only")
        sys.exit(1)
    try:
        code = run(
            config,
            ExtensionsApi(config.runtime_api),
            extension_name(sys.argv if argv is None else argv),
            log,
            interruptions,
            started_wall=started_wall,
            started_mono=started_mono,
        )
    except Exception as error:  # a bug: one line in the user's log, not a traceback
        log.error(f"unexpected {type(error).__name__} at {_where(error)}: {error}")
        code = 1
    # The work is done. Python restores SIGTERM's default action while it finalizes, so a late
    # SIGTERM (one racing the SHUTDOWN event) would turn exit 0 into death by signal: ignore it.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(code)


def _where(error: BaseException) -> str:
    """``file:line`` of the innermost frame of ``error``'s traceback (no traceback import)."""
    trace = error.__traceback__
    if trace is None:
        return "?"
    while trace.tb_next is not None:
        trace = trace.tb_next
    return f"{os.path.basename(trace.tb_frame.f_code.co_filename)}:{trace.tb_lineno}"
