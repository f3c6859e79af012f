"""Where records go: ``emf`` (stdout) or ``cloudwatch`` (PutMetricData), behind one protocol.

A sink's ``deliver(records, deadline)`` tries to deliver every record before ``deadline`` (a
``time.monotonic()`` value) and says what it delivered and what it did not, with the reason. It
never raises for a delivery failure: the extension logs the result and carries on.

``create_sink`` imports the configured sink only, so the ``emf`` path never loads ``hmac``,
``hashlib`` or ``ssl``. ``DeferredSink`` imports it at its first delivery instead: an on-demand
init sends nothing before the first ``/event/next``, so it need not load a sink's modules then.
The ``MetricSink`` protocol lives in ``sinks.protocol``, imported for type checking only
(``typing`` costs milliseconds at every cold start).
"""

from __future__ import annotations

from concurrency_observer.extension.frozen import value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from concurrency_observer.extension.config import Config
    from concurrency_observer.extension.records import Record
    from concurrency_observer.extension.sinks.protocol import MetricSink


@value
class DeliveryResult:
    """What a ``deliver`` call achieved: ``failed`` records were not delivered, for ``reason``.

    ``unconfirmed`` records were sent but got no answer before the deadline: CloudWatch may have
    taken them, so they are never sent again (that could count an environment twice).
    ``emf_fallback``: the delivered records that went out as EMF lines because no connection to
    CloudWatch could be opened (they are delivered: never to be sent again).
    """

    delivered: tuple[Record, ...]
    failed: tuple[Record, ...] = ()
    reason: str = ""
    attempts: int = 1
    unconfirmed: tuple[Record, ...] = ()
    emf_fallback: tuple[Record, ...] = ()


def create_sink(config: Config) -> MetricSink:
    """The sink ``config.sink`` names, importing only that one."""
    if config.sink == "emf":
        from concurrency_observer.extension.sinks.emf import EmfSink  # noqa: PLC0415

        return EmfSink(config.namespace)
    from concurrency_observer.extension.sinks.cloudwatch import CloudWatchSink  # noqa: PLC0415

    return CloudWatchSink.from_config(config)


class DeferredSink:
    """The configured sink, created (its modules imported) at its first delivery.

    For an on-demand init, whose record waits for the shutdown delivery: importing ``http11``,
    ``sigv4`` and ``hmac`` before the first ``/event/next`` would only add to the init a request
    waits for. One delivery at a time uses it (the shutdown's), so creating it needs no lock.
    """

    def __init__(self, config: Config) -> None:
        self.name = config.sink
        self.may_block = config.sink != "emf"
        self._config = config
        self._sink: MetricSink | None = None

    def deliver(self, records: Sequence[Record], deadline: float) -> DeliveryResult:
        """Create the sink if not yet, then deliver through it."""
        if self._sink is None:
            self._sink = create_sink(self._config)
        return self._sink.deliver(records, deadline)
