"""The subscription to the Telemetry API: a listener on a free port, then ``PUT /telemetry``.

Started once registered and before the first ``/event/next`` (``platform.initReport`` comes when
every extension has called it; the subscription must be in by then). Everything here is local
(the Runtime API, a socket on the sandbox's address) and bounded by ``timeout``, within the init
budget. Whatever fails (the RIE's ``202 Telemetry.NotSupported``, a refused subscription, a
taken port) is a note on the init's INFO line and no account: the record then has no platform
fields, and nothing else changes.
"""

from __future__ import annotations

from concurrency_observer.extension.extensions_api import (
    EXTENSION_ID_HEADER,
    ApiRequest,
    ExtensionsApiError,
)
from concurrency_observer.extension.platform_account import PlatformAccount
from concurrency_observer.extension.telemetry_listener import (
    SANDBOX_HOST,
    TelemetryListener,
    sandbox_address,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from concurrency_observer.extension.extensions_api import ExtensionsApi
    from concurrency_observer.extension.log import Logger

TELEMETRY_PATH = "/2022-07-01/telemetry"
# The only version Lambda Managed Instances accept; standard Lambda accepts it too.
SCHEMA_VERSION = "2025-01-29"
# The API's minimums: deliveries at most 25 ms after an event, in batches as small as allowed.
BUFFERING = {"timeoutMs": 25, "maxItems": 1000, "maxBytes": 262144}
NOT_SUPPORTED = "Telemetry.NotSupported"
SETTLE_STEP = 0.005  # seconds between looks at the account while settling


def subscribe_request(extension_id: str, port: int) -> ApiRequest:
    """``PUT /2022-07-01/telemetry`` for ``platform`` events to ``sandbox.localdomain:port``."""
    headers = ((EXTENSION_ID_HEADER, extension_id), ("Content-Type", "application/json"))
    return ApiRequest("PUT", TELEMETRY_PATH, headers, subscription_body(port))


def subscription_body(port: int) -> bytes:
    """The subscription's JSON (``platform`` events to ``sandbox.localdomain:port``), written
    out: it runs before the first ``/event/next``, where importing ``json`` would cost about
    7 ms; every value in it is a constant of this module or a port number."""
    buffering = ", ".join(f'"{key}": {int(size)}' for key, size in BUFFERING.items())
    return (
        f'{{"schemaVersion": "{SCHEMA_VERSION}", "types": ["platform"], '
        f'"buffering": {{{buffering}}}, '
        f'"destination": {{"protocol": "HTTP", "URI": "http://{SANDBOX_HOST}:{int(port)}"}}}}'
    ).encode()


class Telemetry:
    """A subscribed listener and the account it feeds."""

    def __init__(self, listener: TelemetryListener, account: PlatformAccount) -> None:
        self.listener = listener
        self.account = account

    def settle(self, limit: float, sleep: Callable[[float], None] | None = None) -> None:
        """Wait up to ``limit`` seconds for what is clearly still on its way (no init report
        yet, invocations started and not reported); return at once when nothing is."""
        import time  # noqa: PLC0415 (loaded already)

        pause = sleep or time.sleep
        for _ in range(max(0, round(limit / SETTLE_STEP))):
            if self.account.complete():
                return
            pause(SETTLE_STEP)

    def shutdown_note(self) -> str | None:
        """What went missing, for the shutdown's INFO line; ``None`` when nothing."""
        account = self.account
        if account.events == 0:
            return f"telemetry: no platform event arrived ({self.listener.requests} deliveries)"
        notes = []
        if account.malformed:
            notes.append(f"{account.malformed} malformed events or deliveries ignored")
        # Reports still without their start at shutdown are refused with the others.
        refused = account.refused + account.unmatched_reports()
        if refused:
            notes.append(f"{refused} implausible events refused")
        return "telemetry: " + "; ".join(notes) if notes else None


def subscribe(
    api: ExtensionsApi,
    extension_id: str,
    log: Logger,
    *,
    count_invocations: bool,
    port: int = 0,
    timeout: float = 0.4,
    hosts_file: str | None = None,
) -> tuple[Telemetry | None, str]:
    """Listen and subscribe: the ``Telemetry`` (``None`` when that failed) and a note saying so,
    for the init's INFO line (the extension writes one line at init at INFO, not more)."""
    account = PlatformAccount(count_invocations=count_invocations)
    address = sandbox_address() if hosts_file is None else sandbox_address(hosts_file)
    on_body: Callable[[bytes], object] = account.observe_batch
    if log.debugging:

        def on_body(body: bytes) -> None:
            read = account.observe_batch(body)
            status = f", init {account.init_status}" if account.init_status else ""
            log.debug(f"telemetry: {read} platform events read{status}")

    try:
        listener = TelemetryListener(address, port, on_body)
    except OSError as error:
        return None, f"telemetry off: cannot listen on {address}:{port} ({error.strerror or error})"
    try:
        api.call(subscribe_request(extension_id, listener.port), 200, timeout=timeout)
    except ExtensionsApiError as error:
        listener.close()
        if NOT_SUPPORTED in error.body:
            return None, "telemetry off: the Telemetry API is not supported here"
        return None, f"telemetry off: subscription refused ({_short(error)})"
    listener.start()
    if log.debugging:
        log.debug(f"subscribed to the Telemetry API on {address}:{listener.port}")
    return Telemetry(listener, account), "telemetry on"


def _short(error: ExtensionsApiError) -> str:
    """The status and the first line of the body: an HTML error page is not a log line."""
    shown = f"HTTP {error.status}" if error.status is not None else "no response"
    first = error.body.strip().splitlines()[0][:120] if error.body.strip() else ""
    return f"{shown}: {first}" if first else shown
