"""``Config.from_environ``: every setting, its default, and a warning + default when invalid."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from concurrency_observer import schema
from concurrency_observer.extension.config import (
    DURATIONS_MS,
    Config,
    Credentials,
    is_namespace,
    is_region,
)

LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "orders",
    "AWS_LAMBDA_FUNCTION_VERSION": "7",
    "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
    "AWS_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "secret",
    "AWS_SESSION_TOKEN": "token",
}


def test_defaults_in_lambda() -> None:
    """With only what Lambda sets, every extension setting has its documented default."""
    config, warnings = Config.from_environ(LAMBDA_ENV)
    assert warnings == []
    assert config.sink == "cloudwatch"
    assert config.metrics == "lean"
    assert config.namespace == schema.DEFAULT_NAMESPACE
    assert config.log_level == "INFO"
    assert config.events == ("INVOKE", "SHUTDOWN")
    for suffix, (default, _low, _high) in DURATIONS_MS.items():
        assert getattr(config, suffix.lower()) == default
    assert config.init_budget_ms < 1000  # an endpoint that never answers costs well under 1 s
    assert (config.function_name, config.function_version) == ("orders", "7")
    assert config.init_type == schema.INIT_ON_DEMAND
    assert config.runtime_api == "127.0.0.1:9001"
    assert config.credentials == Credentials("AKIDEXAMPLE", "secret", "token")
    assert config.cloudwatch_endpoint == "https://monitoring.eu-west-1.amazonaws.com"


def test_valid_settings_are_taken() -> None:
    """Valid values, in any case and with spaces, are normalised and used."""
    environ = {
        **LAMBDA_ENV,
        "CONCURRENCY_OBSERVER_SINK": " EMF ",
        "CONCURRENCY_OBSERVER_METRICS": " Full",
        "CONCURRENCY_OBSERVER_NAMESPACE": "Team/Env #1:a_b-c.d",
        "CONCURRENCY_OBSERVER_LOG_LEVEL": "debug",
        "CONCURRENCY_OBSERVER_EVENTS": "shutdown",
        "CONCURRENCY_OBSERVER_INIT_BUDGET_MS": "0",
        "CONCURRENCY_OBSERVER_SHUTDOWN_MARGIN_MS": "50",
        "CONCURRENCY_OBSERVER_SIGTERM_BUDGET_MS": "2000",
        "CONCURRENCY_OBSERVER_CONNECT_TIMEOUT_MS": "10",
        "CONCURRENCY_OBSERVER_PROMPT_THRESHOLD_MS": "3600000",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency",
    }
    config, warnings = Config.from_environ(environ)
    assert warnings == []
    assert config.sink == "emf"
    assert config.metrics == "full"
    assert config.namespace == "Team/Env #1:a_b-c.d"
    assert config.log_level == "DEBUG"
    assert config.events == ("SHUTDOWN",)
    assert config.init_budget_ms == 0
    assert config.shutdown_margin_ms == 50
    assert config.sigterm_budget_ms == 2000
    assert config.connect_timeout_ms == 10
    assert config.prompt_threshold_ms == 3_600_000
    assert config.init_type == schema.INIT_PROVISIONED


def test_events_order_and_spacing_do_not_matter() -> None:
    """``shutdown, INVOKE`` means both events."""
    config, warnings = Config.from_environ({"CONCURRENCY_OBSERVER_EVENTS": "shutdown, INVOKE"})
    assert config.events == ("INVOKE", "SHUTDOWN")
    assert not any("EVENTS" in w for w in warnings)


@pytest.mark.parametrize(
    ("variable", "raw", "attribute", "default"),
    [
        ("CONCURRENCY_OBSERVER_SINK", "kinesis", "sink", "cloudwatch"),
        ("CONCURRENCY_OBSERVER_METRICS", "everything", "metrics", "lean"),
        ("CONCURRENCY_OBSERVER_NAMESPACE", "AWS/Lambda", "namespace", schema.DEFAULT_NAMESPACE),
        ("CONCURRENCY_OBSERVER_NAMESPACE", "bad!name", "namespace", schema.DEFAULT_NAMESPACE),
        ("CONCURRENCY_OBSERVER_NAMESPACE", "x" * 256, "namespace", schema.DEFAULT_NAMESPACE),
        ("CONCURRENCY_OBSERVER_LOG_LEVEL", "TRACE", "log_level", "INFO"),
        ("CONCURRENCY_OBSERVER_EVENTS", "INVOKE", "events", ("INVOKE", "SHUTDOWN")),
        ("CONCURRENCY_OBSERVER_EVENTS", "SHUTDOWN,FOO", "events", ("INVOKE", "SHUTDOWN")),
        ("CONCURRENCY_OBSERVER_INIT_BUDGET_MS", "-1", "init_budget_ms", 400),
        ("CONCURRENCY_OBSERVER_INIT_BUDGET_MS", "5001", "init_budget_ms", 400),
        ("CONCURRENCY_OBSERVER_INIT_BUDGET_MS", "1.5", "init_budget_ms", 400),
        ("CONCURRENCY_OBSERVER_SHUTDOWN_MARGIN_MS", "lots", "shutdown_margin_ms", 200),
        ("CONCURRENCY_OBSERVER_SIGTERM_BUDGET_MS", "3000", "sigterm_budget_ms", 500),
        ("CONCURRENCY_OBSERVER_CONNECT_TIMEOUT_MS", "0", "connect_timeout_ms", 300),
        ("CONCURRENCY_OBSERVER_PROMPT_THRESHOLD_MS", "3600001", "prompt_threshold_ms", 10000),
        ("CONCURRENCY_OBSERVER_PROMPT_THRESHOLD_MS", "10s", "prompt_threshold_ms", 10000),
        ("AWS_REGION", "Europe", "region", None),
        ("AWS_ENDPOINT_URL_CLOUDWATCH", "ftp://x", "cloudwatch_endpoint", None),
        ("CONCURRENCY_OBSERVER_TELEMETRY", "maybe", "telemetry", "auto"),
        ("CONCURRENCY_OBSERVER_TELEMETRY_PORT", "65536", "telemetry_port", 0),
        ("CONCURRENCY_OBSERVER_TELEMETRY_PORT", "²", "telemetry_port", 0),
        ("CONCURRENCY_OBSERVER_TELEMETRY_PORT", "-1", "telemetry_port", 0),
    ],
)
def test_invalid_value_warns_and_uses_default(
    variable: str, raw: str, attribute: str, default: object
) -> None:
    """An invalid value gives exactly one warning line naming the variable, and the default."""
    environ = {**LAMBDA_ENV, "AWS_REGION": "", variable: raw}
    config, warnings = Config.from_environ(environ)
    naming = [w for w in warnings if w.startswith(variable)]
    assert len(naming) == 1, warnings
    assert "\n" not in naming[0]
    assert getattr(config, attribute) == default


def test_region_falls_back_to_default_region() -> None:
    """AWS_DEFAULT_REGION is used without AWS_REGION; China regions get the .cn endpoint."""
    environ = {**LAMBDA_ENV, "AWS_REGION": "", "AWS_DEFAULT_REGION": "cn-north-1"}
    config, _ = Config.from_environ(environ)
    assert config.region == "cn-north-1"
    assert config.cloudwatch_endpoint == "https://monitoring.cn-north-1.amazonaws.com.cn"


def test_endpoint_overrides_in_botocore_order() -> None:
    """AWS_ENDPOINT_URL_CLOUDWATCH wins over AWS_ENDPOINT_URL, which wins over the region's."""
    both = {
        **LAMBDA_ENV,
        "AWS_ENDPOINT_URL_CLOUDWATCH": "http://127.0.0.1:5000",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:6000",
    }
    assert Config.from_environ(both)[0].cloudwatch_endpoint == "http://127.0.0.1:5000"
    generic = {**LAMBDA_ENV, "AWS_ENDPOINT_URL": "http://127.0.0.1:6000"}
    assert Config.from_environ(generic)[0].cloudwatch_endpoint == "http://127.0.0.1:6000"


def test_cloudwatch_sink_without_region_or_credentials_warns() -> None:
    """The cloudwatch sink says at init that it cannot deliver, instead of failing silently."""
    config, warnings = Config.from_environ({"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:1"})
    assert config.credentials is None
    assert config.cloudwatch_endpoint is None
    assert any("cannot deliver" in w for w in warnings)
    assert any("cannot sign" in w for w in warnings)
    _, emf_warnings = Config.from_environ({"CONCURRENCY_OBSERVER_SINK": "emf"})
    assert emf_warnings == []


def test_missing_lambda_values_get_defaults() -> None:
    """Outside Lambda: function name ``unknown``, version ``$LATEST``, no runtime API."""
    config, _ = Config.from_environ({})
    assert (config.function_name, config.function_version) == ("unknown", "$LATEST")
    assert config.runtime_api is None


def test_secret_never_in_repr() -> None:
    """Neither the secret key nor the session token appears in the config's repr."""
    config, _ = Config.from_environ(LAMBDA_ENV)
    shown = repr(config)
    assert "AKIDEXAMPLE" in shown
    assert "secret'" not in shown
    assert "'token'" not in shown


def test_docstring_documents_every_setting() -> None:
    """The module docstring's table names every variable the config reads."""
    from concurrency_observer.extension import config as module

    doc = module.__doc__ or ""
    names = [
        "SINK",
        "NAMESPACE",
        "LOG_LEVEL",
        "EVENTS",
        "TELEMETRY",
        "TELEMETRY_PORT",
        "TELEMETRY_API",
        *DURATIONS_MS,
    ]
    for name in names:
        assert f"`CONCURRENCY_OBSERVER_{name}`" in doc
    for name in [*LAMBDA_ENV, "AWS_DEFAULT_REGION", "AWS_LAMBDA_INITIALIZATION_TYPE"]:
        assert f"`{name}`" in doc
    assert "`AWS_ENDPOINT_URL_CLOUDWATCH`" in doc
    assert "`AWS_ENDPOINT_URL`" in doc


@pytest.mark.parametrize(
    ("raw", "wanted"), [(None, True), ("auto", True), ("on", True), ("ON", True), ("off", False)]
)
def test_telemetry_on_by_default(raw: str | None, wanted: bool) -> None:
    """The Telemetry API is on unless turned off (docs/benchmarks.md: within the targets)."""
    environ = dict(LAMBDA_ENV)
    if raw is not None:
        environ["CONCURRENCY_OBSERVER_TELEMETRY"] = raw
    config, warnings = Config.from_environ(environ)
    assert (config.wants_telemetry, warnings) == (wanted, [])


def test_telemetry_port_and_api() -> None:
    """A port from 0 to 65535 and another address to subscribe at (the local emulator)."""
    environ = {
        **LAMBDA_ENV,
        "CONCURRENCY_OBSERVER_TELEMETRY_PORT": "4243",
        "CONCURRENCY_OBSERVER_TELEMETRY_API": "127.0.0.1:9001",
    }
    config, warnings = Config.from_environ(environ)
    assert (config.telemetry_port, config.telemetry_api, warnings) == (4243, "127.0.0.1:9001", [])


def test_container_credentials_count_as_credentials() -> None:
    """SnapStart's container variables alone: read, and no "cannot sign" warning; documented."""
    from concurrency_observer.extension import config as module

    config, warnings = Config.from_environ(
        {
            "AWS_REGION": "us-east-1",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:9001/2021-04-23/credentials",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "t",
        }
    )
    assert config.credentials is None
    assert config.container_credentials is not None
    assert config.container_credentials.token == "t"
    assert warnings == []
    doc = module.__doc__ or ""
    for name in (
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    ):
        assert f"`{name}`" in doc


@given(st.text(alphabet=string.ascii_letters + string.digits + "-_./#: ", max_size=40))
def test_region_and_namespace_checks_are_the_regular_expressions(text: str) -> None:
    """is_region and is_namespace, written without re, accept what the patterns they replace
    accept (on ASCII; a non-ASCII digit is no region's)."""
    assert is_region(text) == bool(re.fullmatch(r"[a-z]{2}(-[a-z0-9]+)+-\d{1,2}", text))
    assert is_namespace(text) == bool(re.fullmatch(r"[0-9A-Za-z.\-_/#: ]{1,255}", text))


@pytest.mark.parametrize("region", ["us-east-1", "us-gov-west-1", "cn-north-1", "eu-central-2"])
def test_real_regions_are_regions(region: str) -> None:
    """Region names as AWS spells them."""
    assert is_region(region)
    assert not is_region(region.upper())
    assert not is_region(region + "x")
    assert not is_region(region.replace("1", "\u0661").replace("2", "\u0662"))
