"""The environment's life as the extension sees it: register, init record, events, shutdown.

``run`` is the whole extension after configuration:

1. register (for the configured events); if that fails there is no extension identifier to
   report with, so it logs one line and returns 1 (see ``run``'s comment on what Lambda does);
2. deliver the init record within the init budget, BEFORE the first ``/event/next``: a
   provisioned environment may be frozen right after init and never invoked; a record that
   fails is kept and sent again at shutdown with its original timestamp;
3. serve ``/event/next``: count INVOKE events, skip unknown ones, log malformed ones; if
   ``/event/next`` itself fails, back off (no busy loop) and give up only after many failures;
4. at SHUTDOWN (or SIGTERM), deliver what is pending before the deadline minus the margin, once,
   and return 0.

Durations use the monotonic clock; record timestamps use the wall clock.
"""

from __future__ import annotations

import time

from concurrency_observer.extension.events import InvokeEvent, MalformedEventError, ShutdownEvent
from concurrency_observer.extension.extensions_api import ExtensionsApiError, register
from concurrency_observer.extension.records import (
    Environment,
    ShutdownFacts,
    build_init_record,
    build_shutdown_record,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from concurrency_observer.extension.config import Config
    from concurrency_observer.extension.events import NextEvent
    from concurrency_observer.extension.extensions_api import ExtensionsApi, RegisteredExtension
    from concurrency_observer.extension.log import Logger
    from concurrency_observer.extension.records import Record
    from concurrency_observer.extension.sinks import DeliveryResult
    from concurrency_observer.extension.sinks.protocol import MetricSink

# The ShutdownReason when SIGTERM, not a SHUTDOWN event, ends the extension.
SIGTERM_REASON = "sigterm"
MAX_NEXT_FAILURES = 10  # consecutive /event/next failures before the API is considered broken
NEXT_BACKOFF_BASE = 0.05  # seconds, doubled per consecutive failure
NEXT_BACKOFF_CAP = 5.0
# How long a background init delivery may go on after the init budget. The budget bounds how long
# init waits; a request already on its way is not abandoned, since re-sending it at shutdown would
# count the environment twice whenever CloudWatch did take the first one.
INIT_DELIVERY_GRACE = 5.0  # seconds


class Terminated(BaseException):
    """Raised by the SIGTERM handler to interrupt a blocking wait (not an ``Exception``, so the
    loop's catch-all for unexpected errors cannot swallow it)."""


class Interruptions:
    """Shared with the SIGTERM handler: whether SIGTERM came, and whether it may interrupt now.

    The handler interrupts only a blocking wait (``/event/next``, a backoff sleep); anywhere else
    it only sets ``requested``, which the loop checks, so a delivery is never cut in half.
    """

    def __init__(self) -> None:
        self.requested = False
        self.interruptible = False

    def on_sigterm(self, _signum: int, _frame: object) -> None:
        """The SIGTERM handler."""
        self.requested = True
        if self.interruptible:
            raise Terminated


class _InitDelivery:
    """The init record's delivery in a daemon thread: init waits for it only up to its budget."""

    def __init__(self, deliver: Callable[[], DeliveryResult]) -> None:
        import threading  # noqa: PLC0415 (only a sink that may block needs a thread)

        self.result: DeliveryResult | None = None
        self._deliver = deliver
        self._thread = threading.Thread(target=self._run, name="init-delivery", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.result = self._deliver()

    def wait(self, timeout: float) -> DeliveryResult | None:
        """The result, or ``None`` while the delivery is still in flight after ``timeout``."""
        self._thread.join(max(0.0, timeout))
        return self.result


class Lifecycle:
    """Counts what happens to the environment and emits exactly one init and one shutdown record."""

    def __init__(
        self,
        config: Config,
        sink: MetricSink,
        log: Logger,
        *,
        started_wall: float,
        started_mono: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.sink = sink
        self.log = log
        self.environment = Environment(
            config.function_name, config.function_version, config.init_type
        )
        self.started_mono = started_mono
        self.init_record = build_init_record(self.environment, started_wall)
        self.counting_invokes = "INVOKE" in config.events
        self.invocations = 0
        self.first_invoke: float | None = None
        self.last_invoke: float | None = None
        self.pending: list[Record] = []
        self.shutdown_result: DeliveryResult | None = None
        self._init_in_flight: _InitDelivery | None = None
        # Sent without an answer before their deadline: maybe counted, so never sent again.
        self.unconfirmed: list[Record] = []
        self._shutdown_started = False
        self._clock = clock
        self._wall_clock = wall_clock

    def deliver_init(self) -> DeliveryResult | None:
        """Deliver the init record within the init budget; keep it for shutdown if that fails.

        With a sink that may block, the delivery runs in a thread and init waits for it up to the
        budget only; ``None`` means it is still in flight, to be confirmed at shutdown.
        """
        budget = self.config.init_budget_ms / 1000
        deadline = self._clock() + budget
        # A budget of 0 means no delivery during init at all: the record goes with the shutdown one.
        if not self.sink.may_block or budget <= 0:
            result: DeliveryResult | None = self._deliver([self.init_record], deadline)
        else:
            delivery = _InitDelivery(
                lambda: self._deliver([self.init_record], deadline + INIT_DELIVERY_GRACE)
            )
            result = delivery.wait(budget)
            if result is None:
                self._init_in_flight = delivery
        outcome = "init record delivered"
        if result is None:
            outcome = "init record still in flight after the init budget, confirmed at shutdown"
        elif result.unconfirmed:
            self.unconfirmed.extend(result.unconfirmed)
            outcome = f"init record sent but unconfirmed, not re-sent ({result.reason})"
        elif result.failed:
            self.pending.extend(result.failed)
            outcome = f"init record not delivered yet, will retry at shutdown ({result.reason})"
        self.log.info(
            f"{self.environment.init_type} environment of {self.environment.function_name}, "
            f"sink {self.sink.name}: {outcome}"
        )
        return result

    def _settle_init_in_flight(self, deadline: float) -> bool:
        """Wait for a background init delivery, leaving half the time left for the shutdown record.

        Its failed record joins ``pending``; ``True`` if it is still in flight (and so not re-sent).
        """
        delivery, self._init_in_flight = self._init_in_flight, None
        if delivery is None:
            return False
        result = delivery.wait((deadline - self._clock()) / 2)
        if result is None:
            return True
        self.pending.extend(result.failed)
        self.unconfirmed.extend(result.unconfirmed)
        return False

    def on_invoke(self) -> None:
        """Count one INVOKE event."""
        now = self._clock()
        self.invocations += 1
        if self.first_invoke is None:
            self.first_invoke = now
        self.last_invoke = now

    def shutdown(self, reason: str, deadline: float) -> DeliveryResult | None:
        """Build the shutdown record and deliver everything pending before ``deadline``.

        Runs once: a second call (SIGTERM after SHUTDOWN, a repeated SHUTDOWN) returns ``None``.
        """
        if self._shutdown_started:
            return None
        self._shutdown_started = True
        now = self._clock()
        last_activity = self.last_invoke if self.last_invoke is not None else self.started_mono
        facts = ShutdownFacts(
            reason=reason,
            timestamp=self._wall_clock(),
            lifetime=now - self.started_mono,
            idle_time=now - last_activity,
            invocations=self.invocations if self.counting_invokes else None,
            time_to_first_invoke=(
                self.first_invoke - self.started_mono if self.first_invoke is not None else None
            ),
        )
        init_in_flight = self._settle_init_in_flight(deadline)
        threshold = self.config.prompt_threshold_ms / 1000
        records = [*self.pending, build_shutdown_record(self.environment, facts, threshold)]
        self.pending = []
        result = self._deliver(records, deadline)
        self.shutdown_result = result
        delivered = "+".join(record.kind for record in result.delivered) or "nothing"
        summary = (
            f"shutdown ({reason}) after {facts.lifetime:.1f} s, "
            f"{self.invocations if self.counting_invokes else 'uncounted'} invocations: "
            f"delivered {delivered}"
        )
        if result.failed:
            lost = "+".join(record.kind for record in result.failed)
            summary += f", lost {lost} ({result.reason})"
        if result.unconfirmed:
            kinds = "+".join(record.kind for record in result.unconfirmed)
            summary += f", unconfirmed {kinds} (sent, no answer: {result.reason}; never re-sent)"
        if self.unconfirmed:
            summary += ", unconfirmed init (sent at init, no answer; never re-sent)"
        if init_in_flight:
            summary += ", init record still in flight (not re-sent, so never counted twice)"
        self.log.info(summary)
        return result

    def _deliver(self, records: Sequence[Record], deadline: float) -> DeliveryResult:
        try:
            return self.sink.deliver(records, deadline)
        except Exception as error:  # a sink bug must not cost the function anything
            from concurrency_observer.extension.sinks import DeliveryResult  # noqa: PLC0415

            reason = f"{type(error).__name__}: {error}"
            return DeliveryResult((), tuple(records), reason)


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
    log.debug("Registering...")
    try:
        registered = register(api, extension_name, config.events)
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
    )
    lifecycle.deliver_init()
    return _serve_events(registered, lifecycle, interruptions=interruptions, sleep=sleep)


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
            interruptions.interruptible = True
            try:
                event = registered.next_event()
            finally:
                interruptions.interruptible = False
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
            try:
                interruptions.interruptible = True
                sleep(min(NEXT_BACKOFF_CAP, NEXT_BACKOFF_BASE * 2 ** (failures - 1)))
            except Terminated:
                return _terminate(config, lifecycle)
            finally:
                interruptions.interruptible = False


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
