"""The event loop: register, deliver the init record, serve ``/event/next`` until SHUTDOWN.

Lambda treats an extension process that exits before SHUTDOWN as ``Extension.Crash``: the
environment's init fails, or every invoke does. So ``run`` returns only after SHUTDOWN or SIGTERM,
whatever fails on the way:

1. register for the configured events (SHUTDOWN alone under Lambda Managed Instances, and again
   for SHUTDOWN alone when Lambda refuses INVOKE with ``Extension.InvalidEventType``). Without an
   identifier ``/event/next`` cannot be polled: a failed register is retried with capped backoff,
   and after a few failures the process becomes the layer's dependency-free ``fallback.sh``
   (``os.execv``: the same process, so no exit) when the layer has one. When the shell front door
   registered already (``handoff``), this step is skipped: its identifier and events are used,
   and milestones go back to it (``handoff.Milestones``); until the loop is Python's, a failure
   raises ``AbandonedHandOff`` instead, and the front door serves the events itself;
2. start the ``Session``: the init record is delivered within the init budget, before the first
   ``/event/next`` (a provisioned environment may be frozen right after init and never invoked);
   under SnapStart at the restore instead; on-demand, with the shutdown record (a request waits
   on that init: nothing goes on the network before the first ``/event/next``);
3. serve ``/event/next``: count INVOKE events, skip unknown ones, log malformed ones; when
   ``/event/next`` itself fails, back off (capped, no busy loop) and poll again, for ever: the
   API may come back, and SIGTERM still ends the wait with the shutdown record;
4. at SHUTDOWN (or SIGTERM), deliver what is pending before the deadline minus the margin, once,
   and return 0.

An unexpected exception anywhere is logged in one line and the extension falls back to
``idle_until_shutdown``: registered (for SHUTDOWN alone if it was not yet), it serves
``/event/next`` until SHUTDOWN and still writes what it can.
"""

from __future__ import annotations

import time

from concurrency_observer import schema
from concurrency_observer.extension import lean_os
from concurrency_observer.extension.events import InvokeEvent, MalformedEventError, ShutdownEvent
from concurrency_observer.extension.extensions_api import (
    ExtensionsApiError,
    RegisteredExtension,
    register,
)
from concurrency_observer.extension.interruptions import Terminated
from concurrency_observer.extension.session import Session, describe

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from concurrency_observer.extension.config import Config
    from concurrency_observer.extension.events import NextEvent
    from concurrency_observer.extension.extensions_api import ExtensionsApi
    from concurrency_observer.extension.handoff import HandOff, Milestones
    from concurrency_observer.extension.interruptions import Interruptions
    from concurrency_observer.extension.log import Logger

    Exec = Callable[[str, list[str]], object]

# The ShutdownReason when SIGTERM, not a SHUTDOWN event, ends the extension.
SIGTERM_REASON = "sigterm"
NEXT_BACKOFF_BASE = 0.05  # seconds, doubled per consecutive /event/next failure
NEXT_BACKOFF_CAP = 5.0
REGISTER_BACKOFF_CAP = 1.0  # init waits for every extension to register: retry sooner
REGISTER_ATTEMPTS_BEFORE_FALLBACK = 3
IDLE_SLEEP = 60.0  # seconds per wait when nothing is left to do but wait for SIGTERM
SHUTDOWN_ONLY = ("SHUTDOWN",)
# The errorType of a register refused for its events (LMI refusing INVOKE to external extensions).
INVALID_EVENT_TYPE = "Extension.InvalidEventType"
# The dependency-free extension of the layer: beside bootstrap.py, which is three levels up from
# this file (<layer>/concurrency-observer/concurrency_observer/extension/event_loop.py).
FALLBACK = (
    lean_os.dirname(lean_os.dirname(lean_os.dirname(lean_os.absolute(__file__)))) + "/fallback.sh"
)


class AbandonedHandOff(Exception):
    """Python cannot go on before it owns the loop: the front door that started it takes over."""


def backoff(failures: int, cap: float) -> float:
    """Seconds to wait after ``failures`` consecutive failures: doubling from 50 ms, capped."""
    return min(cap, NEXT_BACKOFF_BASE * 2.0 ** min(failures - 1, 32))


def worth_logging(failures: int) -> bool:
    """Log the 1st, 2nd, 4th, 8th... failure of a streak: a lasting outage costs a few lines."""
    return failures & (failures - 1) == 0


def events_to_register(config: Config) -> tuple[str, ...]:
    """The configured events, SHUTDOWN alone under Lambda Managed Instances.

    LMI refuses INVOKE to external extensions (``403 Extension.InvalidEventType``): one environment
    serves many invocations at once there, and extensions are not told of them.
    """
    if config.init_type == schema.INIT_MANAGED_INSTANCES:
        return SHUTDOWN_ONLY
    return config.events


def refuses_event_type(error: ExtensionsApiError) -> bool:
    """Whether Lambda refused a register because of its events (``Extension.InvalidEventType``)."""
    return error.status == 403 and INVALID_EVENT_TYPE in error.body


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
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
    fallback: str | None = FALLBACK,
    execv: Exec = lean_os.execv,
    handoff: HandOff | None = None,
    milestones: Milestones | None = None,
    on_owning: Callable[[], None] | None = None,
) -> int:
    """Run the extension until SHUTDOWN or SIGTERM; the process exit code (0).

    ``fallback`` is the script to become when registering keeps failing (``None``: none).
    ``handoff``: the front door registered already; ``milestones`` tell it how far Python got,
    and ``on_owning`` runs right before the first ``/event/next`` (then SIGTERM is Python's).
    ``AbandonedHandOff`` when a hand-off fails before that.
    """
    session = Session(
        config,
        log,
        started_wall=started_wall,
        started_mono=started_mono,
        clock=clock,
        wall_clock=wall_clock,
    )
    loop = _Loop(
        api,
        extension_name,
        log,
        interruptions,
        session=session,
        sleep=sleep,
        fallback=fallback,
        execv=execv,
        handoff=handoff,
        milestones=milestones,
        on_owning=on_owning,
    )
    try:
        return loop.run(events_to_register(config))
    except Terminated:  # SIGTERM while registering: the environment is going away
        return loop.terminate()
    except Exception as error:  # a bug: one line, then serve SHUTDOWN only
        if handoff is not None and not loop.owns_loop:
            raise AbandonedHandOff(describe(error)) from None
        log.error(f"{describe(error)}; serving SHUTDOWN only")
        return loop.idle_until_shutdown()


def idle_until_shutdown(
    api: ExtensionsApi | None,
    extension_name: str,
    log: Logger,
    interruptions: Interruptions,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Without a usable configuration: register for SHUTDOWN alone and wait for it, recording
    nothing; without an Extensions API at all, wait for SIGTERM. Never returns before either."""
    loop = _Loop(api, extension_name, log, interruptions, session=None, sleep=sleep)
    return loop.idle_until_shutdown()


class _Loop:
    """``run``'s state: the API, the session (``None``: record nothing), and how to wait."""

    def __init__(
        self,
        api: ExtensionsApi | None,
        extension_name: str,
        log: Logger,
        interruptions: Interruptions,
        *,
        session: Session | None,
        sleep: Callable[[float], None],
        fallback: str | None = None,
        execv: Exec = lean_os.execv,
        handoff: HandOff | None = None,
        milestones: Milestones | None = None,
        on_owning: Callable[[], None] | None = None,
    ) -> None:
        self.api = api
        self.extension_name = extension_name
        self.log = log
        self.interruptions = interruptions
        self.session = session
        self.sleep = sleep
        self.fallback = fallback
        self.execv = execv
        self.registered: RegisteredExtension | None = None
        self.handoff = handoff
        self.milestones = milestones
        self.on_owning = on_owning
        self.owns_loop = False

    def run(self, events: tuple[str, ...]) -> int:
        """Register (unless the front door did), start the session, serve events."""
        if self.handoff is not None and self.api is not None:
            self.registered = RegisteredExtension(self.api, self.handoff.extension_id)
            events = self.handoff.events
        else:
            self.log.debug("Registering...")
            self.registered, events = self._register(events)
        self.log.debug(f"Registered with ID: {self.registered.extension_id}")
        if self.session is not None and self.api is not None:
            # Before the first /event/next: platform.initReport comes once every extension has
            # called it, and the subscription must be in by then.
            self.session.subscribe_telemetry(self.api, self.registered.extension_id, events)
            self.session.start(events)
            lifecycle = self.session.lifecycle
            # Only a record that has gone out is Python's alone. One kept for the shutdown
            # delivery (on-demand, or refused at init) is written by the front door if Python
            # ends before the loop is its own, and by Python's shutdown once it is.
            if self.milestones is not None and lifecycle is not None and lifecycle.init_left():
                self.milestones.init_is_ours()
        return self.serve_events()

    def _take_the_loop(self) -> None:
        """Right before the first ``/event/next``: the loop is this process's from here on."""
        if self.owns_loop:
            return
        if self.on_owning is not None:
            self.on_owning()
        if self.milestones is not None:
            self.milestones.owning_the_loop()
        self.owns_loop = True

    def _register(self, events: tuple[str, ...]) -> tuple[RegisteredExtension, tuple[str, ...]]:
        """Register for ``events``; for SHUTDOWN alone if Lambda refuses INVOKE. Both returned.

        Any mode that refuses INVOKE the way LMI does is covered too, whatever its init type says.
        """
        assert self.api is not None
        try:
            return register(self.api, self.extension_name, events), events
        except ExtensionsApiError as error:
            if events == SHUTDOWN_ONLY or not refuses_event_type(error):
                self.log.warning(f"cannot register with the Extensions API, retrying: {error}")
            else:
                self.log.debug(f"INVOKE refused ({error.body[:120]}): registering for SHUTDOWN")
                events = SHUTDOWN_ONLY
        return self._register_until_done(events), events

    def _register_until_done(self, events: tuple[str, ...]) -> RegisteredExtension:
        """Register, retrying with capped backoff until it works; after a few failures, become
        the ``fallback`` script if there is one. ``Terminated`` if SIGTERM comes meanwhile."""
        assert self.api is not None
        failures = 0
        while True:
            failures += 1
            self.interruptions.wait(self.sleep, backoff(failures, REGISTER_BACKOFF_CAP))
            try:
                return register(self.api, self.extension_name, events)
            except ExtensionsApiError as error:
                if worth_logging(failures):
                    self.log.warning(f"register failed ({failures} in a row), retrying: {error}")
            if failures == REGISTER_ATTEMPTS_BEFORE_FALLBACK and self.fallback is not None:
                self._hand_over(self.fallback)

    def _hand_over(self, fallback: str) -> None:
        """Become ``fallback`` (same process: Lambda sees no exit); return if that is impossible."""
        if not lean_os.access(fallback, lean_os.X_OK):
            return
        self.log.warning(f"handing over to {lean_os.basename(fallback)}, which registers itself")
        if self.api is not None:
            self.api.close()
        import sys  # noqa: PLC0415 (already loaded; flushed so no line is lost in the exec)

        for stream in (sys.stdout, sys.stderr):
            try:  # noqa: SIM105 (contextlib is not loaded at cold start; this code avoids it)
                stream.flush()
            except (OSError, ValueError):
                pass
        try:
            self.execv(fallback, [fallback, self.extension_name])
        except OSError as error:
            self.log.warning(f"cannot run {fallback}: {error}; registering again")

    def serve_events(self) -> int:
        """Serve ``/event/next`` until SHUTDOWN or SIGTERM; 0."""
        assert self.registered is not None
        self._take_the_loop()
        failures = 0
        while True:
            try:
                event, failures = self._next_event(self.registered, failures)
                if event is None:
                    continue
                if self.session is None:
                    if isinstance(event, ShutdownEvent):
                        return 0
                    continue
                self.session.on_answer()
                if self._handle(self.session, event):
                    return 0
            except Terminated:
                return self.terminate()

    def _next_event(
        self, registered: RegisteredExtension, failures: int
    ) -> tuple[NextEvent | None, int]:
        """One ``/event/next``: (the event, 0), or after a failure and its backoff (``None``, the
        streak's length). ``Terminated`` when SIGTERM comes before or during a wait."""
        log, interruptions = self.log, self.interruptions
        if interruptions.requested:
            raise Terminated
        try:
            if log.debugging:
                log.debug("Waiting for event...")
            return interruptions.wait(registered.next_event), 0
        except Exception as error:  # API errors, malformed events, and bugs: log, back off, go on
            failures += 1
            if isinstance(error, MalformedEventError):
                log.warning(f"ignoring a malformed event: {error}")
            elif worth_logging(failures):
                log.warning(f"/event/next failed ({failures} in a row), polling again: {error}")
            interruptions.wait(self.sleep, backoff(failures, NEXT_BACKOFF_CAP))
            return None, failures

    def _handle(self, session: Session, event: NextEvent) -> bool:
        """Act on one event; ``True`` once the environment has shut down."""
        log = self.log
        if isinstance(event, InvokeEvent):
            if log.debugging:  # the f-string is not built when DEBUG is off
                log.debug(f"Received INVOKE {event.request_id}")
            session.on_invoke()
            return False
        if isinstance(event, ShutdownEvent):
            log.debug(f"Received SHUTDOWN ({event.reason})")
            config = session.config
            deadline = shutdown_deadline(
                event.deadline_ms,
                config.shutdown_margin_ms,
                config.sigterm_budget_ms,
                mono_now=session.clock(),
                wall_now=session.wall_clock(),
            )
            session.shutdown(event.reason, deadline)
            return True
        log.debug(f"Ignoring an event of unknown type {event.event_type!r}")
        return False

    def terminate(self) -> int:
        """SIGTERM: write the shutdown record within the SIGTERM budget; 0."""
        session = self.session
        if session is not None:
            budget = session.config.sigterm_budget_ms / 1000
            session.shutdown(SIGTERM_REASON, session.clock() + budget)
        return 0

    def idle_until_shutdown(self) -> int:
        """After a bug: registered (for SHUTDOWN alone if not yet), serve until SHUTDOWN; with
        no Extensions API, or after a bug here too, wait for SIGTERM."""
        try:
            if self.api is not None:
                if self.registered is None:
                    self.registered = self._register_until_done(SHUTDOWN_ONLY)
                    if self.session is not None:  # its records claim no invocation count
                        self.session.events = SHUTDOWN_ONLY
                return self.serve_events()
        except Terminated:
            return self.terminate()
        except Exception as error:  # a bug here too: nothing left but waiting for SIGTERM
            self.log.error(f"{describe(error)}; waiting for SIGTERM")
        try:
            while True:
                self.interruptions.wait(self.sleep, IDLE_SLEEP)
        except Terminated:
            return self.terminate()


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
