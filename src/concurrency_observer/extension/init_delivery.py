"""The init record's delivery in a daemon thread, so init waits for it only up to its budget."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from concurrency_observer.extension.sinks import DeliveryResult

# How long a background init delivery may go on after the init budget. The budget bounds how long
# init waits; a request already on its way is not abandoned, since re-sending it at shutdown would
# count the environment twice whenever CloudWatch did take the first one.
INIT_DELIVERY_GRACE = 5.0  # seconds


class InitDelivery:
    """One delivery running in a daemon thread; ``wait`` gives its result or ``None`` meanwhile."""

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
