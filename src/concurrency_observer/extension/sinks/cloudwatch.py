"""The ``cloudwatch`` sink: PutMetricData (Query protocol, form-encoded, SigV4-signed) over HTTPS.

One request carries every pending record, each datum with its own record's timestamp. Failures
are retried with exponential backoff and full jitter while the caller's deadline allows, but only
when retrying can help and cannot count anything twice: connection failures, and answers that say
the request was not taken (5xx, throttling). A 400 or 403 (bad request, access denied) fails at
once. A connection is opened per delivery: init and shutdown can be hours apart, across freezes.

A request that was sent is never sent again without an answer: its answer is waited for until the
deadline, and without one its records are ``unconfirmed`` (CloudWatch may have taken them; a
PutMetricData has no idempotency token, so a re-send would count an environment twice). The
counts this tool exists for are worth more than the rare record lost that way.

Fail open (a function in a VPC without egress, docs/aws.md): when no connection to CloudWatch
could be opened at all (the DNS lookup, the connect or the TLS handshake failed or timed out, so
not a byte of any request left), the records are written as EMF lines instead, with one log
line. They have certainly not reached CloudWatch, so each record is counted exactly once either
way, and the delivery reports them delivered: the lifecycle never sends them again. A connection
that was opened and then hung is the other case: the request may have been taken, so its records
stay unconfirmed and no EMF line is written.

Credentials come from the environment (``AWS_ACCESS_KEY_ID`` and the rest), or, when those are
absent (SnapStart), from the container credentials endpoint at delivery time
(``credentials.py``).
"""

from __future__ import annotations

import os
import re
import time

from concurrency_observer.extension.http11 import Connection, HttpError, parse_url
from concurrency_observer.extension.redaction import BODY_WITHHELD, quote_body
from concurrency_observer.extension.sigv4 import sign, uri_encode
from concurrency_observer.extension.sinks import DeliveryResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from concurrency_observer.extension.config import Config, Credentials
    from concurrency_observer.extension.credentials import ContainerCredentials
    from concurrency_observer.extension.http11 import Resolver
    from concurrency_observer.extension.records import Record
    from concurrency_observer.extension.sinks.protocol import MetricSink

SERVICE = "monitoring"
API_VERSION = "2010-08-01"
CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
MAX_DATA_PER_REQUEST = 1000  # PutMetricData limit
BACKOFF_BASE = 0.05  # seconds; doubled per attempt, full jitter
BACKOFF_CAP = 1.0
MIN_ATTEMPT_TIME = 0.02  # an attempt with less time left than this cannot succeed
# Attempts in a row that could not open a connection before a delivery fails open to EMF. One
# retry rides out a blip; waiting for the deadline instead would hold every cold start in a VPC
# without egress to the whole init budget, and lose the init record of an environment shut down
# before its background delivery gives up (5.4 s).
CONNECT_FAILURES_BEFORE_EMF = 2
# What CloudWatch answers for credentials that expired meanwhile: fetch fresh ones and retry.
EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
# Error codes AWS uses for throttling (botocore's retry handler treats these the same way).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)
_CODE = re.compile(r"<Code>([^<]{1,128})</Code>")
_MESSAGE = re.compile(r"<Message>([^<]{1,300})</Message>")


def _uniform_jitter() -> float:
    # os.urandom rather than the random module: random costs ~0.4 MB of RSS in every environment.
    return int.from_bytes(os.urandom(4), "big") / 2**32


def iso8601(timestamp: float) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` for an epoch timestamp."""
    whole = int(timestamp)
    millis = round((timestamp - whole) * 1000)
    if millis == 1000:
        whole, millis = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def _number(metric_value: float) -> str:
    return str(metric_value) if isinstance(metric_value, int) else repr(float(metric_value))


def put_metric_data_params(namespace: str, records: Sequence[Record]) -> list[tuple[str, str]]:
    """The PutMetricData parameters: one datum per metric and dimension set, in record order."""
    params = [("Action", "PutMetricData"), ("Version", API_VERSION), ("Namespace", namespace)]
    index = 0
    for record in records:
        values = dict(record.dimensions)
        stamp = iso8601(record.timestamp)
        for metric in record.metrics:
            for dimension_set in metric.dimension_sets:
                index += 1
                member = f"MetricData.member.{index}"
                params.append((f"{member}.MetricName", metric.name))
                for position, name in enumerate(dimension_set, start=1):
                    params.append((f"{member}.Dimensions.member.{position}.Name", name))
                    params.append((f"{member}.Dimensions.member.{position}.Value", values[name]))
                params.append((f"{member}.Timestamp", stamp))
                params.append((f"{member}.Value", _number(metric.value)))
                params.append((f"{member}.Unit", metric.unit))
    if index > MAX_DATA_PER_REQUEST:
        raise ValueError(f"{index} data exceed PutMetricData's {MAX_DATA_PER_REQUEST}")
    return params


def form_encode(params: Sequence[tuple[str, str]]) -> bytes:
    """``application/x-www-form-urlencoded`` body for ``params``."""
    return "&".join(f"{uri_encode(k)}={uri_encode(v)}" for k, v in params).encode("ascii")


def _encodable(record: Record) -> bool:
    """Whether every dimension value of ``record`` is UTF-8 text (a lone surrogate, from bytes of
    the environment that are no UTF-8, is not)."""
    try:
        for _, dimension in record.dimensions:
            dimension.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_retryable(status: int, code: str | None) -> bool:
    """Whether an error response is worth another attempt: 5xx, 429 or a throttling code."""
    return status >= 500 or status == 429 or code in THROTTLING_CODES


class CloudWatchSink:
    """Delivers records with PutMetricData, retrying within the caller's deadline."""

    name = "cloudwatch"
    may_block = True  # a network round trip: the lifecycle runs the init delivery in a thread

    def __init__(
        self,
        *,
        namespace: str,
        endpoint_url: str | None,
        region: str | None,
        credentials: Credentials | None,
        container_credentials: ContainerCredentials | None = None,
        connect_timeout: float = 0.3,
        fallback: MetricSink | None = None,
        log: Callable[[str], None] = lambda _line: None,
        resolver: Resolver | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = _uniform_jitter,
    ) -> None:
        """``credentials`` win over ``container_credentials`` (botocore's order). ``fallback``
        takes the records no connection could carry (the EMF sink); ``log`` gets the one line
        that says so. ``resolver`` replaces ``getaddrinfo`` (tests)."""
        self.namespace = namespace
        self.region = region
        self.credentials = credentials
        self.container_credentials = None if credentials else container_credentials
        self._problem = ""
        if endpoint_url is None or region is None:
            self._problem = "no region or endpoint (AWS_REGION, AWS_ENDPOINT_URL_CLOUDWATCH)"
        elif credentials is None and container_credentials is None:
            self._problem = (
                "no credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, or "
                "AWS_CONTAINER_CREDENTIALS_FULL_URI)"
            )
        self._endpoint = None
        self._path = "/"
        if endpoint_url is not None:
            self._endpoint = parse_url(endpoint_url)
            self._path = self._endpoint.base_path or "/"
        self._connect_timeout = connect_timeout
        self._fallback = fallback
        self._log = log
        self._resolver = resolver
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._jitter = jitter

    @classmethod
    def from_config(cls, config: Config) -> CloudWatchSink:
        """The sink for ``config``'s endpoint, region, credentials and timeouts, failing open to
        EMF lines on stdout."""
        from concurrency_observer.extension.log import Logger  # noqa: PLC0415
        from concurrency_observer.extension.sinks.emf import EmfSink  # noqa: PLC0415

        container = None
        if config.credentials is None and config.container_credentials is not None:
            from concurrency_observer.extension.credentials import (  # noqa: PLC0415
                ContainerCredentials,
            )

            container = ContainerCredentials(config.container_credentials)
        return cls(
            namespace=config.namespace,
            endpoint_url=config.cloudwatch_endpoint,
            region=config.region,
            credentials=config.credentials,
            container_credentials=container,
            connect_timeout=config.connect_timeout_ms / 1000,
            fallback=EmfSink(config.namespace),
            log=Logger(config.log_level).warning,
        )

    def deliver(self, records: Sequence[Record], deadline: float) -> DeliveryResult:
        """Send ``records`` in one PutMetricData call, retried until it succeeds or time is up."""
        if not records:
            return DeliveryResult((), attempts=0)
        if self._problem or self._endpoint is None:
            return DeliveryResult((), tuple(records), self._problem, attempts=0)
        unsendable = [record for record in records if not _encodable(record)]
        if unsendable:
            return self._split(records, unsendable, deadline)
        # A connection per call: the init delivery may still run in its thread when the shutdown
        # delivery starts, and the two must not share a socket.
        connection = Connection(
            self._endpoint,
            self._connect_timeout,
            None,
            resolver=self._resolver,
            clock=self._clock,
        )
        try:
            result, unreachable = self._deliver(records, deadline, connection)
        finally:
            connection.close()
        if unreachable and result.failed and self._fallback is not None:
            return self._fail_open(result, deadline)
        return result

    def _split(
        self, records: Sequence[Record], unsendable: list[Record], deadline: float
    ) -> DeliveryResult:
        """Records with a value PutMetricData cannot carry (text that is no UTF-8, such as a
        function name of bytes from the environment) go out as EMF lines, which escape it; the
        others as usual. One such value must not lose every data point of the delivery."""
        sendable = [record for record in records if record not in unsendable]
        sent = self.deliver(sendable, deadline)
        if self._fallback is None:
            reason = "a dimension value is not UTF-8 text: PutMetricData cannot carry it"
            return DeliveryResult(
                sent.delivered,
                (*sent.failed, *unsendable),
                sent.reason or reason,
                sent.attempts,
                sent.unconfirmed,
                sent.emf_fallback,
            )
        written = self._fallback.deliver(unsendable, deadline)
        kinds = "+".join(record.kind for record in written.delivered) or "nothing"
        self._log(f"a dimension value is not UTF-8 text: wrote {kinds} as EMF on stdout instead")
        return DeliveryResult(
            (*sent.delivered, *written.delivered),
            (*sent.failed, *written.failed),
            sent.reason or written.reason,
            sent.attempts,
            sent.unconfirmed,
            (*sent.emf_fallback, *written.delivered),
        )

    def _fail_open(self, result: DeliveryResult, deadline: float) -> DeliveryResult:
        """Write the records no connection could carry as EMF lines (see the module docstring)."""
        assert self._fallback is not None
        written = self._fallback.deliver(result.failed, deadline)
        kinds = "+".join(record.kind for record in written.delivered) or "nothing"
        self._log(
            f"CloudWatch unreachable, nothing sent ({result.reason}): wrote {kinds} as EMF on "
            "stdout instead, counted once that way (a VPC without egress needs a NAT or the "
            "monitoring interface endpoint)"
        )
        return DeliveryResult(
            written.delivered,
            written.failed,
            written.reason or result.reason,
            result.attempts,
            emf_fallback=written.delivered,
        )

    def _credentials(self, deadline: float) -> Credentials | str:
        """The credentials to sign with, or why there are none right now."""
        if self.credentials is not None:
            return self.credentials
        assert self.container_credentials is not None
        # Only SnapStart-like environments get here: the module is loaded by from_config then.
        from concurrency_observer.extension.credentials import CredentialsError  # noqa: PLC0415

        try:
            return self.container_credentials.get(deadline)
        except CredentialsError as error:
            return f"cannot get credentials: {error}"

    def _deliver(
        self, records: Sequence[Record], deadline: float, connection: Connection
    ) -> tuple[DeliveryResult, bool]:
        """The delivery's result, and whether it ended without any connection to CloudWatch."""
        body = form_encode(put_metric_data_params(self.namespace, records))
        attempt = 0
        reason = "no time left to send"
        connect_failures = 0  # attempts in a row that opened no connection
        reached = False  # a byte of some request went to CloudWatch
        while True:
            remaining = deadline - self._clock()
            if remaining < MIN_ATTEMPT_TIME:
                failed = DeliveryResult((), tuple(records), f"{reason} (deadline)", attempt)
                return failed, connect_failures > 0 and not reached
            attempt += 1
            credentials = self._credentials(deadline)
            if isinstance(credentials, str):
                reason, retryable = credentials, True
            else:
                try:
                    response = connection.request(
                        "POST",
                        self._path,
                        self._signed_headers(connection, body, credentials),
                        body,
                        # No read timeout of its own: a sent request is not re-sent, so its answer
                        # is the only way to know whether CloudWatch took it; the deadline bounds
                        # everything from the DNS lookup to the answer's last byte.
                        read_timeout=None,
                        connect_timeout=self._connect_timeout,
                        deadline=deadline,
                    )
                except HttpError as error:
                    if error.sent:
                        unconfirmed = DeliveryResult(
                            (), (), str(error), attempt, unconfirmed=tuple(records)
                        )
                        return unconfirmed, False
                    connect_failures += 1
                    reason, retryable = str(error), True
                    if (
                        self._fallback is not None
                        and not reached
                        and connect_failures >= CONNECT_FAILURES_BEFORE_EMF
                    ):
                        return DeliveryResult((), tuple(records), reason, attempt), True
                else:
                    connect_failures, reached = 0, True
                    if response.status == 200:
                        return DeliveryResult(tuple(records), attempts=attempt), False
                    reason, retryable = self._refusal(response.status, response.body)
            if not retryable:
                return DeliveryResult((), tuple(records), reason, attempt), False
            backoff = self._jitter() * min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
            if self._clock() + backoff + MIN_ATTEMPT_TIME > deadline:
                failed = DeliveryResult((), tuple(records), f"{reason} (deadline)", attempt)
                return failed, connect_failures > 0 and not reached
            self._sleep(backoff)

    def _signed_headers(
        self, connection: Connection, body: bytes, credentials: Credentials
    ) -> list[tuple[str, str]]:
        headers = [("Content-Type", CONTENT_TYPE)]
        headers += sign(
            method="POST",
            host=connection.endpoint.host_header,
            path=self._path,
            headers=headers,
            body=body,
            credentials=credentials,
            region=self.region or "",
            service=SERVICE,
            timestamp=self._wall_clock(),
        )
        return headers

    def _refusal(self, status: int, body: bytes) -> tuple[str, bool]:
        """The reason CloudWatch gave for not taking a request, and whether to try again."""
        text = body.decode("utf-8", "replace")
        code_match, message_match = _CODE.search(text), _MESSAGE.search(text)
        code = code_match.group(1) if code_match else None
        # An endpoint may echo the request, signature and session token included: masked here,
        # before the cut (a cut secret no longer matches), and again by the logger; a body that
        # holds a credential in an encoded form is not quoted at all.
        message = quote_body(message_match.group(1) if message_match else text, 200)
        message = message if message is not None else BODY_WITHHELD
        shown = f"HTTP {status} {code}" if code else f"HTTP {status}"
        if code in EXPIRED_CODES and self.container_credentials is not None:
            self.container_credentials.invalidate()  # fresh ones at the next attempt
            return f"{shown}: {message}", True
        return f"{shown}: {message}", is_retryable(status, code)
