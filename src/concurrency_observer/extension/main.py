"""Entry point inside Lambda: ``layer/bootstrap.py`` calls ``main()``, which exits the process
only after SHUTDOWN or SIGTERM.

The launcher passes its own file name as the first argument: Lambda knows the extension by the
name of the executable in ``/opt/extensions``, and registering under any other name makes it an
internal extension, which cannot receive SHUTDOWN.

Started by the shell front door (``--handoff``, see ``handoff``), the process is that shell's
child and does not register: until it owns the event loop it ignores SIGTERM (the front door
decides then) and, rather than degrade, exits on any failure (``HANDOFF_ABANDONED``), which
tells the front door to serve the events itself. Its exit is then no ``Extension.Crash``: the
process Lambda started is the shell, which stays.
"""

from __future__ import annotations

import sys
import time

from concurrency_observer.extension import lean_os
from concurrency_observer.extension.config import Config
from concurrency_observer.extension.event_loop import AbandonedHandOff, idle_until_shutdown, run
from concurrency_observer.extension.extensions_api import ExtensionsApi
from concurrency_observer.extension.handoff import (
    HandOffError,
    Milestones,
    front_door_start,
    parse_handoff,
)
from concurrency_observer.extension.interruptions import Interruptions
from concurrency_observer.extension.log import Logger
from concurrency_observer.extension.session import describe

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal

    from concurrency_observer.extension.handoff import HandOff
else:  # signal's enums cost about 2 ms at every cold start; _signal is the same calls, in C
    import _signal as signal

DEFAULT_EXTENSION_NAME = "concurrency-observer"
_NAME_MAX = 128
# The exit status of a hand-off given up before Python owned the loop (the front door goes on).
HANDOFF_ABANDONED = 70


def extension_name(argv: list[str]) -> str:
    """The name to register under: the launcher's file name (``argv[1]``), else the default."""
    if len(argv) > 1:
        name = lean_os.basename(argv[1].strip())
        if name and len(name) <= _NAME_MAX and name.isprintable() and " " not in name:
            return name
    return DEFAULT_EXTENSION_NAME


def main(argv: list[str] | None = None) -> None:
    """Run the extension with the process's environment and ``sys.argv``; exits the process after
    SHUTDOWN.

    No path exits before SHUTDOWN or SIGTERM: Lambda treats an extension that does as
    ``Extension.Crash`` and fails the customer's environment. A missing or malformed
    ``AWS_LAMBDA_RUNTIME_API`` (only outside Lambda) waits for SIGTERM; a bug before the event
    loop starts serves SHUTDOWN alone, recording nothing.
    """
    started_wall, started_mono = time.time(), time.monotonic()
    arguments = sys.argv if argv is None else argv
    interruptions = Interruptions()
    name = extension_name(arguments)
    log = Logger()
    try:
        handoff = parse_handoff(arguments)
    except HandOffError as error:
        log.error(f"{error}; the shell front door goes on")
        sys.exit(HANDOFF_ABANDONED)
    if handoff is not None:
        run_handed_off(
            handoff,
            name,
            log,
            interruptions,
            started_wall=started_wall,
            started_mono=started_mono,
        )
    signal.signal(signal.SIGTERM, interruptions.on_sigterm)
    try:
        config, log = _configured()
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


def _configured() -> tuple[Config, Logger]:
    """The configuration from the process's environment; a logger at its level, its warnings
    said."""
    config, warnings = Config.from_environ(lean_os.environ())
    log = Logger(config.log_level)
    for warning in warnings:
        log.warning(warning)
    return config, log


def run_handed_off(
    handoff: HandOff,
    name: str,
    log: Logger,
    interruptions: Interruptions,
    *,
    started_wall: float,
    started_mono: float,
) -> None:
    """Serve the events the front door registered for; exits the process (never returns).

    SIGTERM is ignored until Python owns the loop: before that the front door answers it (it
    stops this process and writes the records itself), so they are written once.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    milestones = Milestones(handoff.milestone_fd)
    started_wall, started_mono = front_door_start(handoff, started_wall, started_mono)

    def on_owning() -> None:
        signal.signal(signal.SIGTERM, interruptions.on_sigterm)

    try:
        config, log = _configured()
        api = _api_or_none(log)
        if api is None:
            raise AbandonedHandOff("no Extensions API")
        code = run(
            config,
            api,
            name,
            log,
            interruptions,
            started_wall=started_wall,
            started_mono=started_mono,
            fallback=None,
            handoff=handoff,
            milestones=milestones,
            on_owning=on_owning,
        )
    except AbandonedHandOff as error:  # before the loop was Python's: the front door goes on
        log.error(f"{error}; the shell front door goes on")
        sys.exit(HANDOFF_ABANDONED)
    except Exception as error:  # a bug in reading the configuration: the same
        log.error(f"{describe(error)}; the shell front door goes on")
        sys.exit(HANDOFF_ABANDONED)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(code)


def _api_or_none(log: Logger, *, quiet: bool = False) -> ExtensionsApi | None:
    """The Extensions API at ``AWS_LAMBDA_RUNTIME_API``, or ``None`` (logged unless ``quiet``)
    when it is missing or not ``host:port``: only outside Lambda, where nothing can be done."""
    raw = (lean_os.getenv("AWS_LAMBDA_RUNTIME_API") or "").strip()
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
