"""Container credentials (SnapStart): fetched as botocore does, cached by their Expiration."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest
from botocore.credentials import ContainerProvider
from hypothesis import given, settings
from hypothesis import strategies as st

from concurrency_observer.extension.config import Config, ContainerCredentialsSource, Credentials
from concurrency_observer.extension.credentials import (
    ADVISORY_REFRESH_S,
    ContainerCredentials,
    CredentialsError,
    parse_expiration,
)

from .fakes import LocalServer, QuietHandler, serving

TOKEN = "Bearer-like-token-1"
NOW = 1_800_000_000.0  # the injected wall clock's start


def iso(epoch: float) -> str:
    """``epoch`` as the ISO 8601 the endpoint answers."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class CredentialsServer:
    """A container credentials endpoint on 127.0.0.1: answers the right token with the keys of the
    current ``generation`` (a test bumps it to tell a fetch from a cached answer)."""

    def __init__(self, token: str = TOKEN, expiration: str = iso(NOW + 6 * 3600)) -> None:
        self.token = token
        self.expiration = expiration
        self.status = 200
        self.generation = 1
        self.authorizations: list[str | None] = []
        self._lock = threading.Lock()
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                with server._lock:
                    server.authorizations.append(self.headers.get("Authorization"))
                    count = server.generation
                if server.status != 200:
                    self.reply(server.status, b"unavailable")
                elif self.headers.get("Authorization") != server.token:
                    self.reply(404, b"cannot get credentials for the provided token\n")
                else:
                    document = {
                        "AccessKeyId": f"ASIAFETCHED{count}",
                        "SecretAccessKey": f"secret-{count}",
                        "Token": f"session-{count}",
                        "Expiration": server.expiration,
                    }
                    self.reply(200, json.dumps(document).encode())

        self._server = LocalServer(Handler)
        self.uri = f"http://{self._server.address}/2021-04-23/credentials"

    @contextmanager
    def running(self) -> Iterator[CredentialsServer]:
        """Serve for the block."""
        with serving(self._server):
            yield self


def provider(
    source: ContainerCredentialsSource, wall: list[float] | None = None
) -> ContainerCredentials:
    """Our provider with an injected wall clock (``wall[0]``)."""
    clock = wall if wall is not None else [NOW]
    return ContainerCredentials(source, wall_clock=lambda: clock[0])


def botocore_fetch(environ: dict[str, str]) -> dict[str, str]:
    """What botocore's ContainerProvider fetches with ``environ`` (the oracle)."""
    container = ContainerProvider(environ=environ)
    full_uri = environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    fetched: dict[str, str] = container._create_fetcher(full_uri)()
    return fetched


def test_same_credentials_as_botocore_from_a_local_endpoint() -> None:
    """Token in the environment: ours and botocore's send the same header, get the same keys."""
    with CredentialsServer().running() as server:
        environ = {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": server.uri,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": TOKEN,
        }
        config, warnings = Config.from_environ({**environ, "AWS_REGION": "us-east-1"})
        assert config.container_credentials is not None
        assert warnings == []  # no "cannot sign": the container variables are credentials
        ours = provider(config.container_credentials).get(time.monotonic() + 5)
        oracle = botocore_fetch(environ)
    assert server.authorizations == [TOKEN, TOKEN]
    assert ours == Credentials("ASIAFETCHED1", "secret-1", "session-1")
    assert ours == Credentials(oracle["access_key"], oracle["secret_key"], oracle["token"])
    assert parse_expiration(oracle["expiry_time"]) == NOW + 6 * 3600


def test_token_file_wins_and_is_read_at_each_fetch(tmp_path: Path) -> None:
    """AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE beats the token, and a rotated file is re-read."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    with CredentialsServer(expiration="0001-01-01T00:00:00Z").running() as server:
        environ = {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": server.uri,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "the-variable-loses",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
        }
        config, _ = Config.from_environ(environ)
        assert config.container_credentials is not None
        credentials = provider(config.container_credentials)
        credentials.get(time.monotonic() + 5)
        botocore_fetch(environ)
        token_file.write_text("rotated")
        with pytest.raises(CredentialsError, match="HTTP 404"):
            credentials.get(time.monotonic() + 5)
    assert server.authorizations == [TOKEN, TOKEN, "rotated"]


def test_cached_until_shortly_before_expiration() -> None:
    """Reused while more than 15 minutes are left on the wall clock, then fetched again."""
    wall = [NOW]
    with CredentialsServer(expiration=iso(NOW + 3600)).running() as server:
        credentials = provider(ContainerCredentialsSource(server.uri, TOKEN), wall)
        assert server.authorizations == []  # nothing is fetched before a delivery needs it
        first = credentials.get(time.monotonic() + 5)
        wall[0] = NOW + 3600 - ADVISORY_REFRESH_S - 1
        assert credentials.get(time.monotonic() + 5) is first
        assert len(server.authorizations) == 1
        # A SnapStart restore: the wall clock jumps hours ahead of what was cached.
        server.expiration, server.generation = iso(NOW + 9 * 3600), 2
        wall[0] = NOW + 5 * 3600
        second = credentials.get(time.monotonic() + 5)
    assert second.access_key_id == "ASIAFETCHED2"
    assert len(server.authorizations) == 2


def test_an_expiration_already_past_is_used_once_never_cached() -> None:
    """The RIE's Expiration (0001-01-01): the fetched keys serve this delivery, then refetched."""
    with CredentialsServer(expiration="0001-01-01T00:00:00Z").running() as server:
        credentials = provider(ContainerCredentialsSource(server.uri, TOKEN))
        for _ in range(3):
            assert credentials.get(time.monotonic() + 5).access_key_id == "ASIAFETCHED1"
    assert len(server.authorizations) == 3


def test_failed_refresh_keeps_cached_credentials_only_with_ten_minutes_left() -> None:
    """Endpoint down at refresh: cached ones while > 10 min are left, then CredentialsError."""
    wall = [NOW]
    with CredentialsServer(expiration=iso(NOW + 3600)).running() as server:
        credentials = provider(ContainerCredentialsSource(server.uri, TOKEN), wall)
        cached = credentials.get(time.monotonic() + 5)
        server.status = 503
        wall[0] = NOW + 3600 - 12 * 60  # 12 minutes left: refresh fails, cached ones serve
        assert credentials.get(time.monotonic() + 5) is cached
        wall[0] = NOW + 3600 - 9 * 60  # 9 minutes left: no longer
        with pytest.raises(CredentialsError, match="HTTP 503"):
            credentials.get(time.monotonic() + 5)


def test_unreachable_endpoint_is_bounded_by_the_deadline() -> None:
    """Nothing listening: CredentialsError before the deadline, naming the endpoint."""
    with CredentialsServer().running() as server:
        uri = server.uri
    credentials = provider(ContainerCredentialsSource(uri, TOKEN))
    with pytest.raises(CredentialsError, match="cannot connect"):
        credentials.get(time.monotonic() + 0.5)


@pytest.mark.parametrize(
    ("environ", "uri"),
    [
        ({"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/creds"}, "http://169.254.170.2/v2/creds"),
        (
            {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "https://creds.example/x"},
            "https://creds.example/x",
        ),
        ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.2:80/x"}, "http://127.0.0.2:80/x"),
        ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://[::1]:80/x"}, "http://[::1]:80/x"),
        ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://localhost/x"}, "http://localhost/x"),
        (
            {
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/rel",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1/full",
            },
            "http://169.254.170.2/rel",
        ),
    ],
)
def test_endpoint_read_as_botocore_reads_it(environ: dict[str, str], uri: str) -> None:
    """The relative URI wins and goes to the ECS address; https anywhere, http to loopback only."""
    config, warnings = Config.from_environ(environ)
    assert config.container_credentials is not None
    assert config.container_credentials.uri == uri
    assert not any("CONTAINER" in w for w in warnings)


@pytest.mark.parametrize(
    ("environ", "warning"),
    [
        ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://evil.example/x"}, "loopback"),
        ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.1/x"}, "loopback"),
        ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "ftp://127.0.0.1/x"}, "not an http"),
    ],
)
def test_endpoint_that_could_leak_the_token_is_refused(
    environ: dict[str, str], warning: str
) -> None:
    """Plain http to anything but loopback or the container hosts: ignored, one warning."""
    config, warnings = Config.from_environ(environ)
    assert config.container_credentials is None
    assert any(warning in w for w in warnings)
    assert any("cannot sign" in w for w in warnings)


def test_environment_credentials_win_over_the_container_endpoint() -> None:
    """Both present: the AWS_ACCESS_KEY_ID family signs, as in botocore's chain."""
    from concurrency_observer.extension.sinks.cloudwatch import CloudWatchSink

    config, _ = Config.from_environ(
        {
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "AKIAENV",
            "AWS_SECRET_ACCESS_KEY": "s",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:1/creds",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": TOKEN,
        }
    )
    sink = CloudWatchSink.from_config(config)
    assert sink.credentials == Credentials("AKIAENV", "s", None)
    assert sink.container_credentials is None


def test_token_with_a_line_break_is_refused() -> None:
    """A token that would inject a header is ignored with a warning (botocore raises)."""
    config, warnings = Config.from_environ(
        {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:1/creds",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "a\r\nX-Evil: 1",
        }
    )
    assert config.container_credentials is not None
    assert config.container_credentials.token is None
    assert any("line break" in w for w in warnings)


def test_secret_token_not_in_repr() -> None:
    """The authorization token never appears in the configuration's repr."""
    source = ContainerCredentialsSource("http://127.0.0.1:1/c", TOKEN)
    assert TOKEN not in repr(source)


@settings(deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
def test_parse_expiration_matches_datetime(moment: datetime) -> None:
    """Any UTC date and time (whole seconds) parses to what datetime computes."""
    moment = moment.replace(microsecond=0, tzinfo=timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") if moment.year >= 1000 else None
    if text is None:
        text = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"
    assert parse_expiration(text + "Z") == moment.timestamp()
    assert parse_expiration(text + ".250+02:00") == moment.timestamp() - 7200


@pytest.mark.parametrize("text", ["", "soon", "2026-13-01T00:00:00Z", "2026-01-01T00:00:00", 5])
def test_unreadable_expiration_is_none(text: object) -> None:
    """Not an ISO 8601 time with a zone: None (the credentials are then not cached)."""
    assert parse_expiration(text) is None
