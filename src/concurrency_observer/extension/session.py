"""What the extension holds between events, guarded so that no bug ends it before SHUTDOWN.

A ``Session`` owns the environment's ``Lifecycle`` (its counts and records) once the extension is
registered, and shields the event loop from it: a bug while starting it, counting an INVOKE or
writing the shutdown record is logged in one line and the loop goes on, since an extension that
exits before SHUTDOWN is an ``Extension.Crash`` of the customer's environment. At shutdown it
writes what it can: if the lifecycle never started, a new one is tried, its init record going out
with the shutdown record.

On-demand (``AWS_LAMBDA_INITIALIZATION_TYPE`` missing or ``on-demand``): a request waits for the
init, so nothing goes on the network before the first ``/event/next``. The init record is kept
for the shutdown delivery, stamped at init, and the sink is created only then (its modules are not
loaded during init). The Telemetry subscription is a call to the local Runtime API, not the
network, and must be made during init; credentials and the zone are fetched only by a delivery.

SnapStart (``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start``): Lambda runs init once, when the version
is published, and snapshots the environment while the extension is blocked in ``/event/next``;
every environment restored from the snapshot resumes there, and extensions get no restore event.
So under SnapStart nothing is recorded, and no sink (no connection) is made, before the snapshot:
the first ``/event/next`` answer is the restore, and the lifecycle starts then, with the wall and
monotonic clocks of that moment (lifetime and time to first invoke run from the restore). Each
restored environment so gets one init record, stamped at its restore. A restore shows as the wall
clock jumping ahead of the monotonic one; that jump is only logged (DEBUG), not required: under
SnapStart every first answer follows a restore, and whether the monotonic clock paused across
the snapshot is not something to depend on. The sinks draw no random
state of their own (``os.urandom``), so none is carried over from the snapshot either.
"""

from __future__ import annotations

import time

from concurrency_observer import schema
from concurrency_observer.extension import lean_os
from concurrency_observer.extension.lifecycle import Lifecycle

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from concurrency_observer.extension.config import Config
    from concurrency_observer.extension.extensions_api import ExtensionsApi
    from concurrency_observer.extension.log import Logger
    from concurrency_observer.extension.telemetry import Telemetry

# A wall clock ahead of the monotonic clock by more than this, since init, is a restore.
RESTORE_JUMP = 1.0  # seconds
# The subscription is local (the Runtime API, a socket): bounded well inside the init budget.
TELEMETRY_TIMEOUT = (0.05, 0.25)  # seconds: at least, at most (else the init budget)
# At SHUTDOWN, a delivery still on its way (the init's report after a failed init, the last
# invocations' reports) is waited for this long at most: twice the 25 ms buffering, then what has
# arrived is used.
TELEMETRY_SETTLE = 0.06  # seconds
# The metadata endpoint is asked at shutdown, within this and a quarter of the time left.
ZONE_TIMEOUT = 0.25  # seconds


def where(error: BaseException) -> str:
    """``file:line`` of the innermost frame of ``error``'s traceback (no traceback import)."""
    trace = error.__traceback__
    if trace is None:
        return "?"
    while trace.tb_next is not None:
        trace = trace.tb_next
    return f"{lean_os.basename(trace.tb_frame.f_code.co_filename)}:{trace.tb_lineno}"


def describe(error: BaseException) -> str:
    """One line for an unexpected error: its type, where it was raised, and its message."""
    return f"unexpected {type(error).__name__} at {where(error)}: {error}"


class Session:
    """The registered extension's state: a ``Lifecycle`` once started, every call guarded."""

    def __init__(
        self,
        config: Config,
        log: Logger,
        *,
        started_wall: float,
        started_mono: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.log = log
        self.started_wall = started_wall
        self.started_mono = started_mono
        self.clock = clock
        self.wall_clock = wall_clock
        self.events: Sequence[str] = config.events
        self.lifecycle: Lifecycle | None = None
        self.telemetry: Telemetry | None = None
        self.telemetry_note: str | None = None  # for the init's INFO line
        self.telemetry_held = 0.0  # seconds the subscription held init: taken from the budget
        # Under SnapStart the environment starts at its restore: the first /event/next answer.
        self.awaiting_restore = config.init_type == schema.INIT_SNAP_START

    def start(self, events: Sequence[str]) -> None:
        """Registered for ``events``: start the lifecycle and deliver the init record (not before
        a snapshot: under SnapStart that waits for ``on_answer``; on-demand, it is kept for the
        shutdown delivery)."""
        self.events = events
        if self.awaiting_restore:
            return
        if self.config.init_type == schema.INIT_ON_DEMAND:
            lifecycle = self._start_lifecycle(
                self.started_wall, self.started_mono, deliver_init=False, deferred_sink=True
            )
            if lifecycle is not None:
                lifecycle.hold_init()
            return
        self._start_lifecycle(
            self.started_wall, self.started_mono, deliver_init=True, held=self.telemetry_held
        )

    def subscribe_telemetry(
        self, api: ExtensionsApi, extension_id: str, events: Sequence[str]
    ) -> None:
        """Subscribe to the Telemetry API when configured; a failure is one line, nothing more.

        Invocations are counted from it only where INVOKE is not (Lambda Managed Instances,
        SHUTDOWN only): there it is the only account of them.
        """
        if not self.config.wants_telemetry:
            return
        began = self.clock()
        try:
            from concurrency_observer.extension.telemetry import subscribe  # noqa: PLC0415

            low, high = TELEMETRY_TIMEOUT
            elsewhere = self.config.telemetry_api
            if elsewhere is not None:  # the local harness's emulator
                from concurrency_observer.extension.extensions_api import (  # noqa: PLC0415
                    ExtensionsApi,
                )

                api = ExtensionsApi(elsewhere)
            try:
                self.telemetry, self.telemetry_note = subscribe(
                    api,
                    extension_id,
                    self.log,
                    count_invocations="INVOKE" not in events,
                    port=self.config.telemetry_port,
                    timeout=max(low, min(high, self.config.init_budget_ms / 1000)),
                )
            finally:
                if elsewhere is not None:
                    api.close()
        except Exception as error:
            self.log.error(f"{describe(error)}; telemetry off")
            self.telemetry, self.telemetry_note = None, None
        self.telemetry_held = max(0.0, self.clock() - began)

    def platform_facts(self, deadline: float) -> dict[str, object]:
        """What the Telemetry API and the metadata endpoint told, at shutdown (what has arrived)."""
        from concurrency_observer.extension.metadata import zone_facts  # noqa: PLC0415

        facts: dict[str, object] = {}
        lifecycle, telemetry = self.lifecycle, self.telemetry
        try:
            if telemetry is not None and lifecycle is not None:
                telemetry.settle(min(TELEMETRY_SETTLE, (deadline - self.clock()) / 4))
                facts.update(
                    telemetry.account.facts(
                        init_time_ms=lifecycle.started_wall * 1000,
                        prompt_threshold_ms=self.config.prompt_threshold_ms,
                        now_ms=self.wall_clock() * 1000,
                    )
                )
                lifecycle.shutdown_note = telemetry.shutdown_note()
        except Exception as error:
            self.log.error(f"{describe(error)}; no telemetry in the record")
        left = deadline - self.clock()
        facts.update(zone_facts(lean_os.environ(), min(ZONE_TIMEOUT, left / 4)))
        return facts

    def on_answer(self) -> None:
        """``/event/next`` answered: under SnapStart the first answer is the restore."""
        if not self.awaiting_restore:
            return
        self.awaiting_restore = False
        wall, mono = self.wall_clock(), self.clock()
        jump = (wall - self.started_wall) - (mono - self.started_mono)
        if jump > RESTORE_JUMP:
            self.log.debug(f"restored from a snapshot: the wall clock jumped {jump:.1f} s")
        self._start_lifecycle(wall, mono, deliver_init=True)

    def on_invoke(self) -> None:
        """Count an INVOKE event, if there is a lifecycle to count it."""
        if self.lifecycle is None:
            return
        try:
            self.lifecycle.on_invoke()
        except Exception as error:
            self.log.error(describe(error))

    def shutdown(self, reason: str, deadline: float) -> None:
        """Write the shutdown record (and a never-sent init record) before ``deadline``, once."""
        try:
            if self.lifecycle is None:
                # Never started (a bug, or SIGTERM before a restore): the init record goes now.
                lifecycle = self._start_lifecycle(
                    self.started_wall, self.started_mono, deliver_init=False
                )
                if lifecycle is None:
                    return
                lifecycle.pending.append(lifecycle.init_record)
            assert self.lifecycle is not None
            try:
                if self.lifecycle.platform_facts is None:  # once: a second shutdown is a no-op
                    self.lifecycle.platform_facts = self.platform_facts(deadline)
            except Exception as error:
                self.log.error(f"{describe(error)}; no platform facts in the record")
            self.lifecycle.shutdown(reason, deadline)
        except Exception as error:
            self.log.error(f"{describe(error)}; the shutdown record is lost")

    def _start_lifecycle(
        self,
        started_wall: float,
        started_mono: float,
        *,
        deliver_init: bool,
        held: float = 0.0,
        deferred_sink: bool = False,
    ) -> Lifecycle | None:
        """Start the lifecycle; ``deferred_sink``: its sink's modules load at its first delivery."""
        # Here, not at the top: the sinks package is only needed once registered.
        from concurrency_observer.extension.sinks import DeferredSink, create_sink  # noqa: PLC0415

        try:
            self.lifecycle = Lifecycle(
                self.config,
                DeferredSink(self.config) if deferred_sink else create_sink(self.config),
                self.log,
                started_wall=started_wall,
                started_mono=started_mono,
                events=self.events,
                clock=self.clock,
                wall_clock=self.wall_clock,
            )
            self.lifecycle.init_note = self.telemetry_note
            if deliver_init:
                self.lifecycle.deliver_init(held)
        except Exception as error:
            self.log.error(f"{describe(error)}; serving events without records")
            self.lifecycle = None
        return self.lifecycle
