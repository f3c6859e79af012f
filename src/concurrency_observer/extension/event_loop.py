"""The event loop: register, deliver the init record, serve ``/event/next`` until SHUTDOWN.

``run`` is the whole extension after configuration:

1. register (for the configured events); if that fails there is no extension identifier to
   report with, so it logs one line and returns 1 (see ``run``'s comment on what Lambda does);
2. let ``Lifecycle`` deliver the init record within the init budget, before the first
   ``/event/next``;
3. serve ``/event/next``: count INVOKE events, skip unknown ones, log malformed ones; if
   ``/event/next`` itself fails, back off (no busy loop) and give up only after many failures;
4. at SHUTDOWN (or SIGTERM), let ``Lifecycle`` deliver what is pending before the deadline minus
   the margin, once, and return 0.
"""

from __future__ import annotations

import time

from concurrency_observer import schema
from concurrency_observer.extension.events import InvokeEvent, MalformedEventError, ShutdownEvent
from concurrency_observer.extension.extensions_api import ExtensionsApiError, register
from concurrency_observer.extension.interruptions import Terminated
from concurrency_observer.extension.lifecycle import Lifecycle

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from concurrency_observer.extension.config import Config
    from concurrency_observer.extension.events import NextEvent
    from concurrency_observer.extension.extensions_api import ExtensionsApi, RegisteredExtension
    from concurrency_observer.extension.interruptions import Interruptions
    from concurrency_observer.extension.log import Logger

# The ShutdownReason when SIGTERM, not a SHUTDOWN event, ends the extension.
SIGTERM_REASON = "sigterm"
MAX_NEXT_FAILURES = 10  # consecutive /event/next failures before the API is considered broken
NEXT_BACKOFF_BASE = 0.05  # seconds, doubled per consecutive failure
NEXT_BACKOFF_CAP = 5.0
SHUTDOWN_ONLY = ("SHUTDOWN",)
# The errorType of a register refused for its events (LMI refusing INVOKE to external extensions).
INVALID_EVENT_TYPE = "Extension.InvalidEventType"


def shutdown_deadline(
    deadline_ms: int | None, margin_ms: int, fallback_ms: int, *, mono_now: float, wall_now: float
) -> float:
    """The monotonic deadline for a SHUTDOWN whose ``deadlineMs`` (epoch ms) is given or not.

    The margin is kept when there is time for it; when less than the margin is left, half of
    what is left is used: a record that can still be sent is not given up for a margin.
    """
    if deadline_ms is None:
        return mono_now + fallback_ms / 1000
    left = deadline_ms / 1000 - wall_now
    return mono_now + max(0.0, left - margin_ms / 1000, left / 2)


def run(
    config: Config,
    api: ExtensionsApi,
    extension_name: str,
    log: Logger,
    interruptions: Interruptions,
    *,
    started_wall: float,
    started_mono: float,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run the extension until SHUTDOWN or SIGTERM; the process exit code."""
    events = events_to_register(config)
    log.debug("Registering...")
    try:
        registered, events = _register(api, extension_name, events, log)
    except ExtensionsApiError as error:
        # /extension/init/error needs the identifier that only a successful register returns
        # (the RIE's handler answers 403 to a request without a known Lambda-Extension-Identifier),
        # so a failed registration cannot be reported there. Lambda treats an extension process
        # that exits during init as Extension.Crash and fails the init, which is the truth here:
        # the Extensions API is broken. Waiting instead would only hold init to its timeout.
        log.error(f"cannot register with the Extensions API: {error}")
        return 1
    log.debug(f"Registered with ID: {registered.extension_id}")

    # Here, not at the top: the sinks package is only needed once registered.
    from concurrency_observer.extension.sinks import create_sink  # noqa: PLC0415

    lifecycle = Lifecycle(
        config,
        create_sink(config),
        log,
        started_wall=started_wall,
        started_mono=started_mono,
        events=events,
    )
    lifecycle.deliver_init()
    return _serve_events(registered, lifecycle, interruptions=interruptions, sleep=sleep)


def events_to_register(config: Config) -> tuple[str, ...]:
    """The configured events, SHUTDOWN alone under Lambda Managed Instances.

    LMI refuses INVOKE to external extensions (``403 Extension.InvalidEventType``): one environment
    serves many invocations at once there, and extensions are not told of them.
    """
    if config.init_type == schema.INIT_MANAGED_INSTANCES:
        return SHUTDOWN_ONLY
    return config.events


def _register(
    api: ExtensionsApi, extension_name: str, events: tuple[str, ...], log: Logger
) -> tuple[RegisteredExtension, tuple[str, ...]]:
    """Register for ``events``; for SHUTDOWN alone if Lambda refuses INVOKE. Both returned.

    Any mode that refuses INVOKE the way LMI does is covered too, whatever its init type says.
    """
    try:
        return register(api, extension_name, events), events
    except ExtensionsApiError as error:
        if not (events != SHUTDOWN_ONLY and refuses_event_type(error)):
            raise
        log.debug(f"INVOKE refused ({error.body[:120]}): registering for SHUTDOWN only")
    return register(api, extension_name, SHUTDOWN_ONLY), SHUTDOWN_ONLY


def refuses_event_type(error: ExtensionsApiError) -> bool:
    """Whether Lambda refused a register because of its events (``Extension.InvalidEventType``)."""
    return error.status == 403 and INVALID_EVENT_TYPE in error.body


def _serve_events(
    registered: RegisteredExtension,
    lifecycle: Lifecycle,
    *,
    interruptions: Interruptions,
    sleep: Callable[[float], None],
) -> int:
    config, log = lifecycle.config, lifecycle.log
    failures = 0
    while True:
        if interruptions.requested:
            return _terminate(config, lifecycle)
        try:
            if log.debugging:
                log.debug("Waiting for event...")
            event = interruptions.wait(registered.next_event)
            failures = 0
            if _handle(event, lifecycle):
                return 0
        except Terminated:
            return _terminate(config, lifecycle)
        except Exception as error:  # API errors, malformed events, and bugs: log, back off, go on
            failures += 1
            if isinstance(error, MalformedEventError):
                log.warning(f"ignoring a malformed event: {error}")
            else:
                log.warning(f"/event/next failed ({failures}/{MAX_NEXT_FAILURES}): {error}")
            if failures >= MAX_NEXT_FAILURES:
                return _give_up(registered, lifecycle, log, error)
            backoff = min(NEXT_BACKOFF_CAP, NEXT_BACKOFF_BASE * 2 ** (failures - 1))
            try:
                interruptions.wait(sleep, backoff)
            except Terminated:
                return _terminate(config, lifecycle)


def _handle(event: NextEvent, lifecycle: Lifecycle) -> bool:
    """Act on one event; ``True`` once the environment has shut down."""
    if isinstance(event, InvokeEvent):
        if lifecycle.log.debugging:  # the f-string is not built when DEBUG is off
            lifecycle.log.debug(f"Received INVOKE {event.request_id}")
        lifecycle.on_invoke()
        return False
    log, config = lifecycle.log, lifecycle.config
    if isinstance(event, ShutdownEvent):
        log.debug(f"Received SHUTDOWN ({event.reason})")
        deadline = shutdown_deadline(
            event.deadline_ms,
            config.shutdown_margin_ms,
            config.sigterm_budget_ms,
            mono_now=time.monotonic(),
            wall_now=time.time(),
        )
        lifecycle.shutdown(event.reason, deadline)
        return True
    log.debug(f"Ignoring an event of unknown type {event.event_type!r}")
    return False


def _terminate(config: Config, lifecycle: Lifecycle) -> int:
    lifecycle.shutdown(SIGTERM_REASON, time.monotonic() + config.sigterm_budget_ms / 1000)
    return 0


def _give_up(
    registered: RegisteredExtension, lifecycle: Lifecycle, log: Logger, error: BaseException
) -> int:
    message = f"the Extensions API keeps failing, exiting: {error}"
    log.error(message)
    budget = lifecycle.config.sigterm_budget_ms / 1000
    lifecycle.shutdown("extension-error", time.monotonic() + budget)
    try:
        registered.report_exit_error("Extension.EventsApiFailed", message)
    except ExtensionsApiError as report_error:
        log.debug(f"could not report the exit error: {report_error}")
    return 1
