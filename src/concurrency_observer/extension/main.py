"""Entry point inside Lambda: ``layer/bootstrap.py`` calls ``main()``, which exits the process
only after SHUTDOWN or SIGTERM.

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
from concurrency_observer.extension.event_loop import idle_until_shutdown, run
from concurrency_observer.extension.extensions_api import ExtensionsApi
from concurrency_observer.extension.interruptions import Interruptions
from concurrency_observer.extension.log import Logger
from concurrency_observer.extension.session import describe

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
    """Run the extension with ``os.environ`` and ``sys.argv``; exits the process after SHUTDOWN.

    No path exits before SHUTDOWN or SIGTERM: Lambda treats an extension that does as
    ``Extension.Crash`` and fails the customer's environment. A missing or malformed
    ``AWS_LAMBDA_RUNTIME_API`` (only outside Lambda) waits for SIGTERM; a bug before the event
    loop starts serves SHUTDOWN alone, recording nothing.
    """
    started_wall, started_mono = time.time(), time.monotonic()
    interruptions = Interruptions()
    signal.signal(signal.SIGTERM, interruptions.on_sigterm)
    name = extension_name(sys.argv if argv is None else argv)
    log = Logger()
    try:
        config, warnings = Config.from_environ(os.environ)
        log = Logger(config.log_level)
        for warning in warnings:
            log.warning(warning)
        api = _api_or_none(log)
        if api is None:
            code = idle_until_shutdown(None, name, log, interruptions)
        else:
            code = run(
                config,
                api,
                name,
                log,
                interruptions,
                started_wall=started_wall,
                started_mono=started_mono,
            )
    except Exception as error:  # a bug: one line in the user's log, not a traceback or an exit
        log.error(f"{describe(error)}; serving SHUTDOWN only, recording nothing")
        code = idle_until_shutdown(_api_or_none(log, quiet=True), name, log, interruptions)
    # The work is done. Python restores SIGTERM's default action while it finalizes, so a late
    # SIGTERM (one racing the SHUTDOWN event) would turn exit 0 into death by signal: ignore it.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(code)


def _api_or_none(log: Logger, *, quiet: bool = False) -> ExtensionsApi | None:
    """The Extensions API at ``AWS_LAMBDA_RUNTIME_API``, or ``None`` (logged unless ``quiet``)
    when it is missing or not ``host:port``: only outside Lambda, where nothing can be done."""
    raw = os.environ.get("AWS_LAMBDA_RUNTIME_API", "").strip()
    try:
        if raw:
            return ExtensionsApi(raw)
        problem = "is not set"
    except ValueError as error:
        problem = f"is not host:port ({error})"
    if not quiet:
        log.error(
            f"AWS_LAMBDA_RUNTIME_API {problem}: this runs as a Lambda extension only; "
            "waiting for SIGTERM"
        )
    return None
