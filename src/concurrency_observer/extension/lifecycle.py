"""The environment's state as the extension sees it: its counts, its two records, one shutdown.

``Lifecycle`` builds the init record when the environment starts. Where no request waits on the
init (provisioned concurrency, SnapStart, Lambda Managed Instances) it delivers it within the init
budget, BEFORE the first ``/event/next`` (such an environment may be frozen right after init and
never invoked); a record that fails is kept and sent again at shutdown with its original
timestamp. An on-demand init holds a request, so its record is only kept (``hold_init``): it goes
with the shutdown record, stamped at init, and nothing goes on the network before the first
``/event/next``. It counts INVOKE events and, at SHUTDOWN (or SIGTERM), delivers what is pending
before the deadline, once. The event loop that feeds it lives in ``event_loop``.

The metric profile (``config.metrics``) picks the records: ``lean``, one ``EnvironmentDelta`` datum
at init and one at shutdown; ``full``, the six metrics. Under either, the environment record (one
JSON line, ``environment_line``) goes to stdout at shutdown, BEFORE the network delivery of the
shutdown metrics, so a slow CloudWatch can never cost it. Its environment id is drawn when the
lifecycle starts (at each SnapStart restore: a new lifecycle, a new id).

Durations use the monotonic clock; record timestamps use the wall clock.
"""

from __future__ import annotations

import time

from concurrency_observer import schema
from concurrency_observer.extension import lean_os
from concurrency_observer.extension.init_delivery import INIT_DELIVERY_GRACE, InitDelivery
from concurrency_observer.extension.records import (
    INIT,
    SHUTDOWN,
    Environment,
    ShutdownFacts,
    build_delta_record,
    build_init_record,
    build_shutdown_record,
    classify_first_invoke,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from concurrency_observer.extension.config import Config
    from concurrency_observer.extension.log import Logger
    from concurrency_observer.extension.records import Record
    from concurrency_observer.extension.sinks import DeliveryResult
    from concurrency_observer.extension.sinks.protocol import MetricSink


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
        events: Sequence[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """``events`` are those Lambda accepted at register (the configured ones by default)."""
        self.config = config
        self.sink = sink
        self.log = log
        self.environment = Environment(
            config.function_name, config.function_version, config.init_type
        )
        self.started_mono = started_mono
        self.started_wall = started_wall
        self.lean = config.metrics == schema.METRICS_LEAN
        if self.lean:
            self.init_record = build_delta_record(INIT, self.environment, started_wall)
        else:
            self.init_record = build_init_record(self.environment, started_wall)
        # 16 hex digits from the kernel's generator, fresh in every restored copy of a snapshot.
        self.environment_id = lean_os.urandom(8).hex()
        # What the platform told (the Telemetry API): merged into the environment record.
        self.platform_facts: Mapping[str, object] | None = None
        # Said at the end of the init's and the shutdown's INFO lines (the Telemetry API's state):
        # at INFO the extension writes one line at init and one at shutdown, no more.
        self.init_note: str | None = None
        self.shutdown_note: str | None = None
        self.counting_invokes = "INVOKE" in (config.events if events is None else events)
        self.invocations = 0
        self.first_invoke: float | None = None
        self.last_invoke: float | None = None
        self.pending: list[Record] = []
        self._init_in_flight: InitDelivery | None = None
        # Sent without an answer before their deadline: maybe counted, so never sent again.
        self.unconfirmed: list[Record] = []
        self._shutdown_started = False
        self._clock = clock
        self._wall_clock = wall_clock

    def deliver_init(self, held: float = 0.0) -> DeliveryResult | None:
        """Deliver the init record within the init budget; keep it for shutdown if that fails.

        With a sink that may block, the delivery runs in a thread and init waits for it up to the
        budget only; ``None`` means it is still in flight, to be confirmed at shutdown. ``held``:
        seconds of this init the extension has already held (the Telemetry API's subscription),
        taken from the budget, so the whole hold stays within it.
        """
        budget = max(0.0, self.config.init_budget_ms / 1000 - held)
        deadline = self._clock() + budget
        # A budget of 0 means no delivery during init at all: the record goes with the shutdown one.
        if not self.sink.may_block or budget <= 0:
            result: DeliveryResult | None = self._deliver([self.init_record], deadline)
        else:
            delivery = InitDelivery(
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
        self._log_init(outcome)
        return result

    def hold_init(self) -> None:
        """Keep the init record for the shutdown delivery, stamped at init; send nothing now.

        For an on-demand init: a request waits for it, and for the environment's first invoke
        after it (which, past the init's CPU boost, runs on a small share of a core). At
        shutdown no request waits, and one request carries both records.
        """
        self.pending.append(self.init_record)
        self._log_init("init record kept for the shutdown delivery, stamped at init")

    def init_left(self) -> bool:
        """Whether the init record has gone out (delivered, sent, or still on its way), rather
        than being kept for the shutdown delivery."""
        return self.init_record not in self.pending

    def _log_init(self, outcome: str) -> None:
        if self.init_note:
            outcome += f"; {self.init_note}"
        self.log.info(
            f"{self.environment.init_type} environment of {self.environment.function_name}, "
            f"sink {self.sink.name}: {outcome}"
        )

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
        threshold = self.config.prompt_threshold_ms / 1000
        first_invoke = classify_first_invoke(facts, threshold)
        # The record first: it needs no network, so nothing the delivery does can cost it.
        self._write_environment_record(facts, first_invoke)
        init_in_flight = self._settle_init_in_flight(deadline)
        if self.lean:
            shutdown_record = build_delta_record(SHUTDOWN, self.environment, facts.timestamp)
        else:
            shutdown_record = build_shutdown_record(self.environment, facts, threshold)
        records = [*self.pending, shutdown_record]
        self.pending = []
        result = self._deliver(records, deadline)
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
        if self.shutdown_note:
            summary += f"; {self.shutdown_note}"
        self.log.info(summary)
        return result

    def _write_environment_record(self, facts: ShutdownFacts, first_invoke: str | None) -> None:
        """Write the environment record on stdout; a failure costs one log line, nothing else."""
        try:
            from concurrency_observer.extension import environment_line  # noqa: PLC0415

            record = environment_line.build_environment_record(
                self.environment,
                facts,
                environment_id=self.environment_id,
                profile=self.config.metrics,
                init_time=self.started_wall,
                first_invoke=first_invoke,
                platform=self.platform_facts,
            )
            problem = environment_line.write_environment_record(record)
        except Exception as error:  # a bug here must not cost the shutdown metrics
            problem = f"{type(error).__name__}: {error}"
        if problem is not None:
            self.log.warning(f"environment record not written ({problem})")

    def _deliver(self, records: Sequence[Record], deadline: float) -> DeliveryResult:
        try:
            return self.sink.deliver(records, deadline)
        except Exception as error:  # a sink bug must not cost the function anything
            from concurrency_observer.extension.sinks import DeliveryResult  # noqa: PLC0415

            reason = f"{type(error).__name__}: {error}"
            return DeliveryResult((), tuple(records), reason)
