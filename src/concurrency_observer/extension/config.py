"""The extension's configuration: one frozen ``Config`` read once from the environment.

``Config.from_environ(mapping)`` never raises: an invalid value becomes a one-line warning and the
default, because a typo in a setting must not take the function down.

| Variable | Default | Meaning |
|---|---|---|
| `CONCURRENCY_OBSERVER_SINK` | `cloudwatch` | `cloudwatch` (PutMetricData over HTTPS, needs `cloudwatch:PutMetricData`) or `emf` (one Embedded Metric Format line per record on stdout) |
| `CONCURRENCY_OBSERVER_METRICS` | `lean` | `lean`: one metric, `EnvironmentDelta` (+1 at init, -1 at shutdown) per `[FunctionName, InitType]`, one custom metric per init type used; `full`: the six metrics under every dimension set (docs/metrics.md). Either way the environment record goes to stdout at shutdown |
| `CONCURRENCY_OBSERVER_NAMESPACE` | `ConcurrencyObserver` | CloudWatch namespace: 1-255 of `0-9A-Za-z . - _ / # :` and space, not starting with `AWS/` |
| `CONCURRENCY_OBSERVER_LOG_LEVEL` | `INFO` | `ERROR`, `WARNING`, `INFO` (one line at init, one at shutdown) or `DEBUG` (per event) |
| `CONCURRENCY_OBSERVER_EVENTS` | `INVOKE,SHUTDOWN` | `SHUTDOWN` alone costs nothing per invoke, but then `EnvironmentInvocations`, `EnvironmentTimeToFirstInvoke` are not known (not emitted) and `EnvironmentIdleTime` is measured from init |
| `CONCURRENCY_OBSERVER_INIT_BUDGET_MS` | `400` | how long delivering the init record may hold up the environment's init (0-5000; 0: send it with the shutdown record; on-demand inits always do, a request waits on them). A request still in flight then finishes in the background; a record that failed is sent again at shutdown |
| `CONCURRENCY_OBSERVER_SHUTDOWN_MARGIN_MS` | `200` | safety margin kept before the SHUTDOWN event's `deadlineMs` (0-2000); when less than the margin is left, half of what is left is used |
| `CONCURRENCY_OBSERVER_SIGTERM_BUDGET_MS` | `500` | delivery budget when the extension is stopped by SIGTERM instead of a SHUTDOWN event (0-2000) |
| `CONCURRENCY_OBSERVER_CONNECT_TIMEOUT_MS` | `300` | TCP+TLS connect timeout to CloudWatch (1-10000), always also bounded by the phase budget |
| `CONCURRENCY_OBSERVER_PROMPT_THRESHOLD_MS` | `10000` | init-to-first-INVOKE gap up to which an environment counts as invoked `prompt`ly; above it, `delayed` (a proactive init when on-demand) (0-3600000). The `FirstInvoke` class is only known when INVOKE events are counted |
| `CONCURRENCY_OBSERVER_TELEMETRY` | `auto` | `on`: subscribe to the Telemetry API (init duration, status, error type, restore duration, runtime version into the environment record; on Lambda Managed Instances also invocations, concurrency and the idle time since the last one); `off`: never; `auto`: on (docs/benchmarks.md: within the cost targets) |
| `CONCURRENCY_OBSERVER_TELEMETRY_PORT` | `0` | the Telemetry listener's port (0-65535; 0: any free port) |
| `CONCURRENCY_OBSERVER_TELEMETRY_API` | `AWS_LAMBDA_RUNTIME_API` | `host:port` to subscribe at instead: the local harness's emulator (the RIE's default mode only stubs the Telemetry API) |
| `AWS_LAMBDA_FUNCTION_NAME` | `unknown` | `FunctionName` dimension (set by Lambda) |
| `AWS_LAMBDA_FUNCTION_VERSION` | `$LATEST` | `FunctionVersion` dimension (set by Lambda) |
| `AWS_LAMBDA_INITIALIZATION_TYPE` | `on-demand` | `InitType` dimension (set by Lambda; the RIE does not set it) |
| `AWS_LAMBDA_RUNTIME_API` | none | `host:port` of the Extensions API (set by Lambda); without it the extension cannot register |
| `AWS_REGION`, then `AWS_DEFAULT_REGION` | none | region of the CloudWatch endpoint (`cloudwatch` sink) |
| `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` | none | credentials that sign PutMetricData (set by Lambda from the execution role) |
| `AWS_CONTAINER_CREDENTIALS_FULL_URI` (or `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`), `AWS_CONTAINER_AUTHORIZATION_TOKEN` or `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` | none | where credentials are fetched when the variables above are absent, as botocore's container provider does (SnapStart sets these instead); fetched at delivery time, cached until shortly before their `Expiration` |
| `AWS_ENDPOINT_URL_CLOUDWATCH`, then `AWS_ENDPOINT_URL` | `https://monitoring.<region>.amazonaws.com` (`.amazonaws.com.cn` in `cn-` regions) | CloudWatch endpoint override, as botocore reads it; `http://` allowed (a local moto server) |
"""  # noqa: E501 (a Markdown table, copied into docs/configuration.md)

from __future__ import annotations

from concurrency_observer import schema
from concurrency_observer.extension.frozen import value
from concurrency_observer.extension.http11 import parse_url
from concurrency_observer.extension.redaction import add_secret

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

PREFIX = "CONCURRENCY_OBSERVER_"
SINKS = ("cloudwatch", "emf")
LOG_LEVELS = ("ERROR", "WARNING", "INFO", "DEBUG")
TELEMETRY_CHOICES = ("auto", "on", "off")
EVENT_CHOICES = {
    "INVOKE,SHUTDOWN": ("INVOKE", "SHUTDOWN"),
    "SHUTDOWN": ("SHUTDOWN",),
}
# name suffix: (default, minimum, maximum), milliseconds
DURATIONS_MS = {
    "INIT_BUDGET_MS": (400, 0, 5000),
    "SHUTDOWN_MARGIN_MS": (200, 0, 2000),
    "SIGTERM_BUDGET_MS": (500, 0, 2000),
    "CONNECT_TIMEOUT_MS": (300, 1, 10000),
    # The FirstInvoke class's threshold (schema.DEFAULT_PROMPT_THRESHOLD_S); up to an hour.
    "PROMPT_THRESHOLD_MS": (round(schema.DEFAULT_PROMPT_THRESHOLD_S * 1000), 0, 3_600_000),
}
_MAX_DIGITS = 18  # more is not a duration in milliseconds (and int() has a digit limit)
# Masked in every log line (redaction.py); the token file's contents are, once read.
SECRET_VARIABLES = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
)
DEFAULT_FUNCTION_NAME = "unknown"
# What str.strip() removes among ASCII (the bash fallback's whitespace): not U+2028 and the like.
ASCII_WHITESPACE = " \t\n\v\f\r\x1c\x1d\x1e\x1f"
DEFAULT_FUNCTION_VERSION = "$LATEST"

# CloudWatch's namespace rule (PutMetricData reference): 1-255 characters from this set.
# Checked without ``re`` (about 6 ms to import at every cold start, before the first /next).
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_DIGITS = frozenset("0123456789")
_LOWER_OR_DIGIT = _LOWER | _DIGITS
_NAMESPACE_CHARS = _LOWER_OR_DIGIT | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ.-_/#: ")
_NAMESPACE_MAX = 255


def is_namespace(text: str) -> bool:
    """1-255 of ``0-9A-Za-z.-_/#:`` and space (CloudWatch's rule, but for ``AWS/``)."""
    return 0 < len(text) <= _NAMESPACE_MAX and all(c in _NAMESPACE_CHARS for c in text)


def is_region(text: str) -> bool:
    """A region name: two letters, one or more ``-part``s of ``[a-z0-9]``, then ``-`` and one
    or two digits (``us-east-1``, ``us-gov-west-1``, ``eu-central-2``)."""
    parts = text.split("-")
    first, middle, last = parts[0], parts[1:-1], parts[-1]
    return (
        len(parts) >= 3
        and len(first) == 2
        and all(c in _LOWER for c in first)
        and all(part and all(c in _LOWER_OR_DIGIT for c in part) for part in middle)
        and 0 < len(last) <= 2
        and all(c in _DIGITS for c in last)
    )


# The container credentials hosts botocore allows over plain http besides loopback addresses.
ECS_CREDENTIALS_HOST = "http://169.254.170.2"
CONTAINER_CREDENTIALS_HOSTS = ("169.254.170.2", "169.254.170.23", "fd00:ec2::23", "localhost")


def _is_allowed_credentials_host(host: str) -> bool:
    """A loopback IP address (127.0.0.0/8, ::1) or one of ``CONTAINER_CREDENTIALS_HOSTS``."""
    if host in CONTAINER_CREDENTIALS_HOSTS or host in ("::1", "0:0:0:0:0:0:0:1"):
        return True
    parts = host.split(".")
    return (
        len(parts) == 4
        and parts[0] == "127"
        and all(p.isascii() and p.isdigit() and int(p) <= 255 for p in parts)
    )


@value
class Credentials:
    """AWS credentials from the environment; ``repr`` never shows the secret."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:
        token = ", session_token=..." if self.session_token else ""
        return f"Credentials(access_key_id={self.access_key_id!r}, secret_access_key=...{token})"


@value
class ContainerCredentialsSource:
    """Where the container credentials endpoint is and how to authorize (the token or its file)."""

    uri: str
    token: str | None = None
    token_file: str | None = None

    def __repr__(self) -> str:
        token = ", token=..." if self.token else ""
        token_file = f", token_file={self.token_file!r}" if self.token_file else ""
        return f"ContainerCredentialsSource(uri={self.uri!r}{token}{token_file})"


@value
class Config:
    """Everything the extension reads from its environment, validated once."""

    sink: str = "cloudwatch"
    metrics: str = schema.DEFAULT_METRICS_PROFILE
    namespace: str = schema.DEFAULT_NAMESPACE
    log_level: str = "INFO"
    events: tuple[str, ...] = ("INVOKE", "SHUTDOWN")
    init_budget_ms: int = 400
    shutdown_margin_ms: int = 200
    sigterm_budget_ms: int = 500
    connect_timeout_ms: int = 300
    prompt_threshold_ms: int = round(schema.DEFAULT_PROMPT_THRESHOLD_S * 1000)
    telemetry: str = "auto"
    telemetry_port: int = 0
    telemetry_api: str | None = None
    function_name: str = DEFAULT_FUNCTION_NAME
    function_version: str = DEFAULT_FUNCTION_VERSION
    init_type: str = schema.INIT_ON_DEMAND
    runtime_api: str | None = None
    region: str | None = None
    credentials: Credentials | None = None
    cloudwatch_endpoint: str | None = None
    container_credentials: ContainerCredentialsSource | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> tuple[Config, list[str]]:
        """The configuration in ``environ`` and one warning line per invalid setting.

        The secrets among the variables are registered with ``redaction`` on the way, used or
        not: from then on no log line shows them."""
        for secret in SECRET_VARIABLES:
            add_secret(environ.get(secret))
        read = _Reader(environ)
        sink = read.choice("SINK", SINKS, "cloudwatch", upper=False)
        region = read.region()
        endpoint = read.endpoint(region)
        credentials = read.credentials()
        container_credentials = read.container_credentials() if sink == "cloudwatch" else None
        if sink == "cloudwatch" and endpoint is None:
            read.warnings.append("no AWS_REGION or endpoint: the cloudwatch sink cannot deliver")
        if sink == "cloudwatch" and credentials is None and container_credentials is None:
            read.warnings.append(
                "no AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY nor "
                "AWS_CONTAINER_CREDENTIALS_FULL_URI: the cloudwatch sink cannot sign"
            )
        config = cls(
            sink=sink,
            metrics=read.choice(
                "METRICS", schema.METRICS_PROFILES, schema.DEFAULT_METRICS_PROFILE, upper=False
            ),
            namespace=read.namespace(),
            log_level=read.choice("LOG_LEVEL", LOG_LEVELS, "INFO", upper=True),
            events=read.events(),
            init_budget_ms=read.duration("INIT_BUDGET_MS"),
            shutdown_margin_ms=read.duration("SHUTDOWN_MARGIN_MS"),
            sigterm_budget_ms=read.duration("SIGTERM_BUDGET_MS"),
            connect_timeout_ms=read.duration("CONNECT_TIMEOUT_MS"),
            prompt_threshold_ms=read.duration("PROMPT_THRESHOLD_MS"),
            telemetry=read.choice("TELEMETRY", TELEMETRY_CHOICES, "auto", upper=False),
            telemetry_port=read.port("TELEMETRY_PORT"),
            telemetry_api=read.get(PREFIX + "TELEMETRY_API"),
            function_name=read.text("AWS_LAMBDA_FUNCTION_NAME") or DEFAULT_FUNCTION_NAME,
            function_version=read.text("AWS_LAMBDA_FUNCTION_VERSION") or DEFAULT_FUNCTION_VERSION,
            init_type=schema.normalize_init_type(read.text("AWS_LAMBDA_INITIALIZATION_TYPE")),
            runtime_api=read.get("AWS_LAMBDA_RUNTIME_API"),
            region=region,
            credentials=credentials,
            cloudwatch_endpoint=endpoint,
            container_credentials=container_credentials,
        )
        return config, read.warnings

    @property
    def wants_telemetry(self) -> bool:
        """Whether to subscribe to the Telemetry API: ``on``, or ``auto`` (the default)."""
        return self.telemetry != "off"


class _Reader:
    """Reads and validates settings, collecting one warning line per invalid value."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.warnings: list[str] = []

    def get(self, name: str) -> str | None:
        raw = self.environ.get(name)
        return raw.strip() if raw is not None and raw.strip() else None

    def text(self, name: str) -> str | None:
        """A value the record and the dimensions carry: cut first (``cut_text``), then stripped
        of ASCII whitespace, as the bash fallback does (``capped``, then ``trimmed``)."""
        raw = self.environ.get(name)
        cut = schema.cut_text(raw).strip(ASCII_WHITESPACE) if raw is not None else ""
        return cut or None

    def choice(self, suffix: str, choices: tuple[str, ...], default: str, *, upper: bool) -> str:
        raw = self.get(PREFIX + suffix)
        if raw is None:
            return default
        normalized = raw.upper() if upper else raw.lower()
        if normalized in choices:
            return normalized
        self.warnings.append(
            f"{PREFIX}{suffix}={raw!r} is not one of {', '.join(choices)}; using {default}"
        )
        return default

    def duration(self, suffix: str) -> int:
        default, low, high = DURATIONS_MS[suffix]
        raw = self.get(PREFIX + suffix)
        if raw is None:
            return default
        # ASCII digits only: str.isdigit() also accepts "²" and other digits int() refuses, and
        # int() refuses more than 4300 digits; either would raise here and crash the extension.
        if raw.isascii() and raw.isdigit() and len(raw) <= _MAX_DIGITS and low <= int(raw) <= high:
            return int(raw)
        self.warnings.append(
            f"{PREFIX}{suffix}={raw!r} is not a whole number of milliseconds from "
            f"{low} to {high}; using {default}"
        )
        return default

    def port(self, suffix: str) -> int:
        raw = self.get(PREFIX + suffix)
        if raw is None:
            return 0
        if raw.isascii() and raw.isdigit() and len(raw) <= 5 and int(raw) <= 65535:
            return int(raw)
        self.warnings.append(f"{PREFIX}{suffix}={raw!r} is not a port from 0 to 65535; using 0")
        return 0

    def namespace(self) -> str:
        namespace = self.get(PREFIX + "NAMESPACE") or schema.DEFAULT_NAMESPACE
        if is_namespace(namespace) and not namespace.startswith("AWS/"):
            return namespace
        self.warnings.append(
            f"{PREFIX}NAMESPACE={namespace!r} is not a valid CloudWatch namespace (1-255 of "
            f"0-9A-Za-z.-_/#: and space, not AWS/...); using {schema.DEFAULT_NAMESPACE}"
        )
        return schema.DEFAULT_NAMESPACE

    def events(self) -> tuple[str, ...]:
        raw = self.get(PREFIX + "EVENTS")
        if raw is None:
            return EVENT_CHOICES["INVOKE,SHUTDOWN"]
        key = ",".join(sorted({e.strip().upper() for e in raw.split(",") if e.strip()}))
        if key in EVENT_CHOICES:
            return EVENT_CHOICES[key]
        self.warnings.append(
            f"{PREFIX}EVENTS={raw!r} is not INVOKE,SHUTDOWN or SHUTDOWN; using INVOKE,SHUTDOWN"
        )
        return EVENT_CHOICES["INVOKE,SHUTDOWN"]

    def region(self) -> str | None:
        for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            region = self.get(variable)
            if region is None:
                continue
            if is_region(region):
                return region
            self.warnings.append(f"{variable}={region!r} is not a region name; ignoring it")
        return None

    def credentials(self) -> Credentials | None:
        access_key, secret_key = self.get("AWS_ACCESS_KEY_ID"), self.get("AWS_SECRET_ACCESS_KEY")
        if access_key and secret_key:
            return Credentials(access_key, secret_key, self.get("AWS_SESSION_TOKEN"))
        return None

    def container_credentials(self) -> ContainerCredentialsSource | None:
        """The container credentials endpoint, read as botocore's ``ContainerProvider`` reads it.

        A relative URI goes to the ECS agent's address; a full URI must be https, or http to a
        loopback address or one of the container hosts botocore allows (the token must not be
        sent anywhere else). The token file, when named, wins over the token and is read at
        each fetch (it can be rotated).
        """
        relative = self.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        variable = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
        uri = self.get(variable)
        if relative is not None:
            variable, uri = (
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                ECS_CREDENTIALS_HOST + relative,
            )
        if uri is None:
            return None
        try:
            endpoint = parse_url(uri)
        except ValueError as error:
            self.warnings.append(f"{variable}: {error}; ignoring it")
            return None
        if endpoint.scheme != "https" and not _is_allowed_credentials_host(endpoint.host):
            self.warnings.append(
                f"{variable}={uri!r}: http is allowed only to a loopback address or "
                f"{', '.join(CONTAINER_CREDENTIALS_HOSTS)}; ignoring it"
            )
            return None
        token = self.environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        if token is not None and ("\r" in token or "\n" in token):
            self.warnings.append("AWS_CONTAINER_AUTHORIZATION_TOKEN has a line break; ignoring it")
            token = None
        token_file = self.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        return ContainerCredentialsSource(uri, token, token_file)

    def endpoint(self, region: str | None) -> str | None:
        for variable in ("AWS_ENDPOINT_URL_CLOUDWATCH", "AWS_ENDPOINT_URL"):
            raw_url = self.get(variable)
            if raw_url is None:
                continue
            try:
                parse_url(raw_url)
            except ValueError as error:
                self.warnings.append(f"{variable}: {error}; ignoring it")
                continue
            return raw_url
        if region is None:
            return None
        suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
        return f"https://monitoring.{region}.{suffix}"
