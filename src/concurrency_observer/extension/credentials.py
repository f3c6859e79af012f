"""Credentials from the container credentials endpoint, fetched as botocore's ContainerProvider.

SnapStart environments (and ECS, EKS Pod Identity) get no ``AWS_ACCESS_KEY_ID`` family but
``AWS_CONTAINER_CREDENTIALS_FULL_URI`` and ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` (or ``_FILE``). A
``GET`` of that URI with ``Authorization: <token>`` answers ``AccessKeyId``, ``SecretAccessKey``,
``Token`` and ``Expiration``.

When they are fetched matters under SnapStart: the environment is snapshotted after init and
restored later, maybe many times, maybe days later. So nothing is fetched before a delivery needs
it, and credentials are reused only while their ``Expiration``, compared with the wall clock (the
clock it is written in, and the one that counts the time a snapshot slept), is more than 15
minutes away (botocore's advisory refresh). A failed refresh falls back to the cached ones while
they have more than 10 minutes left (botocore's mandatory refresh). An ``Expiration`` that cannot
be read, or that is already that close (the RIE answers ``0001-01-01T00:00:00Z``), means: use
them for this delivery, keep nothing.
"""

from __future__ import annotations

import json
import re
import time

from concurrency_observer.extension.config import Credentials
from concurrency_observer.extension.http11 import Connection, HttpError, parse_url
from concurrency_observer.extension.redaction import BODY_WITHHELD, add_secret, quote_body

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from concurrency_observer.extension.config import ContainerCredentialsSource

ADVISORY_REFRESH_S = 15 * 60  # botocore's: refresh when less than this is left
MANDATORY_REFRESH_S = 10 * 60  # botocore's: never use credentials with less than this left
_ISO8601 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))"
)


class CredentialsError(Exception):
    """The credentials endpoint could not be read, or answered something unusable."""


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (no ``calendar``/``datetime`` import)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def parse_expiration(text: object) -> float | None:
    """An ISO 8601 ``Expiration`` as epoch seconds, or ``None`` if it is not one."""
    match = _ISO8601.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 60):
        return None
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    if match.group(8):  # an offset: local time = UTC + offset
        offset = int(match.group(9)) * 3600 + int(match.group(10)) * 60
        seconds -= offset if match.group(8) == "+" else -offset
    return float(seconds)


def _read_token_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as token_file:
            # As is, like botocore: a token with a line break is refused below, not trimmed.
            token = token_file.read()
    except (OSError, UnicodeDecodeError) as error:
        raise CredentialsError(
            f"cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: {error}"
        ) from None
    add_secret(token)  # read at each fetch: a rotated token is masked too
    return token


class ContainerCredentials:
    """Fetches credentials from the container endpoint at delivery time and caches them by
    ``Expiration`` (module docstring)."""

    def __init__(
        self,
        source: ContainerCredentialsSource,
        *,
        connect_timeout: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self._endpoint = parse_url(source.uri)
        after_authority = source.uri.split("://", 1)[1].partition("/")[2]
        self._target = "/" + after_authority.partition("#")[0]
        self._connect_timeout = connect_timeout
        self._clock = clock
        self._wall_clock = wall_clock
        self._cached: Credentials | None = None
        self._expires_at = 0.0  # epoch seconds; 0: nothing worth reusing

    def get(self, deadline: float) -> Credentials:
        """Credentials good for a request now, fetched before ``deadline`` unless cached."""
        left = self._expires_at - self._wall_clock()
        if self._cached is not None and left > ADVISORY_REFRESH_S:
            return self._cached
        try:
            credentials, expires_at = self._fetch(deadline)
        except CredentialsError:
            if self._cached is not None and left > MANDATORY_REFRESH_S:
                return self._cached
            raise
        self._cached, self._expires_at = credentials, expires_at or 0.0
        return credentials

    def invalidate(self) -> None:
        """Forget the cached credentials (CloudWatch said they expired)."""
        self._cached, self._expires_at = None, 0.0

    def _authorization(self) -> str | None:
        token = self.source.token
        if self.source.token_file is not None:
            token = _read_token_file(self.source.token_file)
        if token is not None and ("\r" in token or "\n" in token):
            raise CredentialsError("the authorization token has a line break")
        return token

    def _fetch(self, deadline: float) -> tuple[Credentials, float | None]:
        headers = [("Accept", "application/json")]
        token = self._authorization()
        if token is not None:
            headers.append(("Authorization", token))
        connection = Connection(self._endpoint, self._connect_timeout, None, clock=self._clock)
        try:
            response = connection.request("GET", self._target, headers, deadline=deadline)
        except HttpError as error:
            raise CredentialsError(str(error)) from None
        finally:
            connection.close()
        text = response.body.decode("utf-8", "replace")
        if response.status != 200:
            # An endpoint may echo the request, the authorization token included, in any form.
            quoted = quote_body(text, 200)
            shown = quoted if quoted is not None else BODY_WITHHELD
            raise CredentialsError(f"{self._endpoint.url}: HTTP {response.status}: {shown}")
        try:
            document = json.loads(text)
        except ValueError:
            raise CredentialsError(f"{self._endpoint.url}: the answer is not JSON") from None
        if not isinstance(document, dict):
            raise CredentialsError(f"{self._endpoint.url}: the answer is not a JSON object")
        access_key, secret_key = document.get("AccessKeyId"), document.get("SecretAccessKey")
        token_value = document.get("Token")
        if not (isinstance(access_key, str) and access_key and isinstance(secret_key, str)):
            raise CredentialsError(f"{self._endpoint.url}: no AccessKeyId/SecretAccessKey")
        session_token = token_value if isinstance(token_value, str) and token_value else None
        credentials = Credentials(access_key, secret_key, session_token)
        return credentials, parse_expiration(document.get("Expiration"))
