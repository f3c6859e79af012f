"""No secret in any log line: the redaction function, fed what real endpoints echo back."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from concurrency_observer.extension import redaction
from concurrency_observer.extension.config import Config, ContainerCredentialsSource, Credentials
from concurrency_observer.extension.credentials import ContainerCredentials, CredentialsError
from concurrency_observer.extension.log import MAX_MESSAGE, Logger
from concurrency_observer.extension.records import Environment, Record, build_init_record
from concurrency_observer.extension.sinks.cloudwatch import CloudWatchSink

from .fakes import ECHO_STYLES, ENCODED_ECHO_STYLES, EchoingServer, encoded_echo

SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # made-up secrets
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+secret=="
CONTAINER_TOKEN = "Ct0k7f3a9c1e5b2d4f60a8c7e9b1d3f5a7c9"
FILE_TOKEN = "Ft0k0e2c4a6b8d1f3e5a7c9b0d2f4e6a8c1"
SECRETS = (SECRET_KEY, SESSION_TOKEN, CONTAINER_TOKEN, FILE_TOKEN)


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    """The secrets of a Lambda environment, read as the extension reads them; forgotten after."""
    redaction.forget_secrets()
    Config.from_environ(
        {
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_SESSION_TOKEN": SESSION_TOKEN,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": CONTAINER_TOKEN,
        }
    )
    yield
    redaction.forget_secrets()


def assert_no_secret(text: str) -> None:
    """None of the secrets, nor a 12-character piece of one, in the text as written or decoded
    (percent, JSON, XML), nor its percent-encoded or base64 form."""
    plain = redaction.decoded(text)
    for secret in SECRETS:
        pieces = {secret[i : i + 12] for i in range(len(secret) - 11)}
        assert not [p for p in pieces if p in text or p in plain], (secret, text)
        encoded = redaction._percent_encoded(secret)
        assert encoded not in text
    assert not redaction.holds_secret(text), text


def test_known_secrets_are_masked_as_they_are_and_percent_encoded() -> None:
    """A registered secret is masked as is, stripped, and in its form-encoded spelling."""
    encoded = redaction._percent_encoded(SESSION_TOKEN)
    text = f"a={SECRET_KEY} b={encoded} c=[{SESSION_TOKEN}] d={CONTAINER_TOKEN}"
    masked = redaction.redact(text)
    assert_no_secret(masked)
    assert masked.count(redaction.MASK) >= 4


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("GET https://user:pa55@example.com/creds?token=abc HTTP/1.1", "https://***@example.com"),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI='http://127.0.0.1:9/c?sig=zz1'", "127.0.0.1:9/c?***"),
        ("Authorization: AWS4-HMAC-SHA256 Credential=AKIA/x, Signature=abc123", "Authorization: "),
        ("X-Amz-Security-Token=FQoGZXIvYXdzE; x-amz-signature=deadbeef", "X-Amz-Security-Token="),
        (
            '{"AccessKeyId": "ASIA1", "SecretAccessKey": "sk-unknown", "Token": "tk-unknown"}',
            "ASIA1",
        ),
        ("env: AWS_SECRET_ACCESS_KEY=sk-unknown AWS_SESSION_TOKEN=tk-unknown", "env: "),
    ],
)
def test_shapes_of_secrets_are_masked_without_knowing_them(text: str, kept: str) -> None:
    """Userinfo, query strings, Authorization, security tokens, credential fields: masked."""
    masked = redaction.redact(text)
    assert kept in masked
    for value in ("pa55", "token=abc", "sig=zz1", "abc123", "FQoGZXIvYXdzE", "deadbeef"):
        assert value not in masked
    assert "sk-unknown" not in masked
    assert "tk-unknown" not in masked


def test_ordinary_lines_are_left_alone() -> None:
    """The INFO lines and AWS error codes keep every word (nothing looks like a secret)."""
    for line in (
        "on-demand environment of orders, python 3.12, sink cloudwatch: init record delivered",
        "HTTP 403 SignatureDoesNotMatch: The request signature we calculated does not match",
        "HTTP 400 ExpiredToken: The security token included in the request is expired",
    ):
        assert redaction.redact(line) == line


def test_the_logger_masks_before_it_cuts_at_every_level() -> None:
    """A secret across the cut of a long line: not even its first half reaches the log."""
    lines: list[str] = []
    logger = Logger("DEBUG", write=lines.append)
    padding = "x" * (MAX_MESSAGE - 20)
    for level in ("DEBUG", "INFO", "WARNING", "ERROR"):
        logger.log(level, f"{padding}{SESSION_TOKEN}")
        logger.log(level, f"echo: {SECRET_KEY}\n{CONTAINER_TOKEN}")
    assert len(lines) == 8
    for line in lines:
        assert_no_secret(line)
        assert line.count("\n") == 1  # one line each: a value cannot start another


def record() -> list[Record]:
    """One init record to deliver."""
    return [build_init_record(Environment("orders", "1", "on-demand"), time.time())]


@pytest.mark.parametrize(
    ("status", "style"),
    # 500 is retried until the deadline: once per style is enough; 403 fails at the first answer.
    [(500, style) for style in ECHO_STYLES] + [(403, s) for s in ECHO_STYLES + ENCODED_ECHO_STYLES],
)
def test_cloudwatch_echoing_the_request_is_logged_without_secrets(status: int, style: str) -> None:
    """CloudWatch (or a proxy) answering with the signed request echoed: reason and log clean."""
    logged: list[str] = []
    with EchoingServer(status, style).running() as server:
        sink = CloudWatchSink(
            namespace="NS",
            endpoint_url=f"http://{server.address}",
            region="us-east-1",
            credentials=Credentials("ASIAEXAMPLE", SECRET_KEY, SESSION_TOKEN),
            log=logged.append,
        )
        result = sink.deliver(record(), time.monotonic() + 0.5)
        echoed = [r.headers.get("X-Amz-Security-Token") for r in server.requests]
    assert echoed[:1] == [SESSION_TOKEN]  # the server did get, and echo, the token
    assert result.failed
    lines: list[str] = []
    Logger("DEBUG", write=lines.append).warning(f"delivery failed: {result.reason}")
    assert f"HTTP {status}" in result.reason
    for text in (result.reason, *logged, *lines):
        assert_no_secret(text)
        assert "Signature=" not in text or "Signature=***" in text


@pytest.mark.parametrize("style", ["plain", *ENCODED_ECHO_STYLES])
@pytest.mark.parametrize("status", [403, 500])
@pytest.mark.parametrize("from_file", [False, True])
def test_container_endpoint_echoing_the_token_is_logged_without_it(
    tmp_path: Path, status: int, from_file: bool, style: str
) -> None:
    """The credentials endpoint answering 403/500 with the request (its token) echoed, in any
    encoding: neither the error nor the log line shows it."""
    token_file = tmp_path / "token"
    token_file.write_text(FILE_TOKEN)
    with EchoingServer(status, style).running() as server:
        uri = f"http://{server.address}/v1/credentials?id=query-secret-77"
        source = ContainerCredentialsSource(
            uri, CONTAINER_TOKEN, str(token_file) if from_file else None
        )
        with pytest.raises(CredentialsError) as raised:
            ContainerCredentials(source).get(time.monotonic() + 2)
        sent = server.requests[0].headers["Authorization"]
    assert sent == (FILE_TOKEN if from_file else CONTAINER_TOKEN)
    message = str(raised.value)
    assert f"HTTP {status}" in message
    lines: list[str] = []
    Logger("DEBUG", write=lines.append).error(f"cannot get credentials: {message}")
    for text in (message, *lines):
        assert_no_secret(text)
        assert "query-secret-77" not in text


@pytest.mark.parametrize(
    "uri",
    [
        "http://user:hunter2pass@169.254.170.9/creds",  # http to a host not allowed: warned
        "https://user:hunter2pass@creds.example.com:99999/creds?token=qtoken42",  # a bad port
        "ftp://creds.example.com/c?token=qtoken42",  # not http(s)
    ],
)
def test_a_credentials_uri_with_userinfo_or_a_query_is_logged_masked(uri: str) -> None:
    """AWS_CONTAINER_CREDENTIALS_FULL_URI with a password or token in it: the warning masks it."""
    _config, warnings = Config.from_environ(
        {"AWS_CONTAINER_CREDENTIALS_FULL_URI": uri, "AWS_REGION": "us-east-1"}
    )
    lines: list[str] = []
    logger = Logger("DEBUG", write=lines.append)
    for warning in warnings:
        logger.warning(warning)
    assert any("AWS_CONTAINER_CREDENTIALS_FULL_URI" in line for line in lines), lines
    for line in lines:
        assert "hunter2pass" not in line
        assert "qtoken42" not in line


@pytest.mark.parametrize("style", ENCODED_ECHO_STYLES)
@pytest.mark.parametrize("secret", SECRETS[:3])
def test_a_disguised_secret_withholds_the_body_and_the_line(style: str, secret: str) -> None:
    """Each encoding of each secret, inside other text: no body quoted, the log line withheld."""
    body = f"<Message>request was: {encoded_echo('x=' + secret + '&y=1', style)}</Message>"
    assert redaction.holds_secret(body)
    assert redaction.quote_body(body, 200) is None
    line = redaction.redact(f"answer: {body}")
    assert_no_secret(line)
    if secret not in body:  # a raw secret is masked in place; a disguised one withholds the line
        assert line == redaction.WITHHELD
    lines: list[str] = []
    Logger("DEBUG", write=lines.append).warning(f"delivery failed: {body}")
    for text in lines:
        assert_no_secret(text)


@pytest.mark.parametrize("alignment", [0, 1, 2])
def test_base64_of_a_secret_is_found_at_any_offset(alignment: int) -> None:
    """The secret base64-encoded inside a longer blob, at each byte alignment, either alphabet."""
    blob = b"p" * alignment + SESSION_TOKEN.encode() + b"trailing bytes"
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        assert redaction.holds_secret(f"body: {encode(blob).decode()}")


def test_bodies_without_a_secret_are_still_quoted() -> None:
    """Escapes, base64 and percent signs that hide nothing: the body is quoted, masked as before."""
    body = "rate 100% reached; see https://example.com/a%2Fb; data=aGVsbG8gd29ybGQ= &amp; \\u0041"
    assert not redaction.holds_secret(body)
    assert redaction.quote_body(body, 200) == redaction.redact(body, 200)
    assert "100%" in (redaction.quote_body(body, 200) or "")
