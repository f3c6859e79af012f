"""What the rollout commands show of an AWS error: its code and a summary, never the data it echoes.

Lambda quotes the request back in some refusals. The one that matters is the 4 KB limit on
environment variables: ``InvalidParameterValueException: Lambda was unable to configure your
environment variables because the environment variables you have provided exceeded the 4KB
limit. String measured: {"DB_PASSWORD":"...",...}``: the whole map, every secret in it. So
nothing an AWS call answers reaches the terminal as it is: ``redacted`` cuts everything after
``String measured:``, replaces any JSON object the text holds with ``{...}``, masks every value
of the function's variables that still appears, and makes it one line; ``error_summary`` turns a
ClientError into ``code: redacted message``, or, for the 4 KB refusal, into which variables and
how large (names only, as the plans show them).

``variables_over_limit`` is the same rule as Lambda's, so a plan refuses the change before it is
sent: the compact JSON of the Variables map (``separators=(",", ":")``, non-ASCII escaped as
``\\uXXXX``), in bytes, at most 4,096.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

from concurrency_observer.aws.session import aws_errors
from concurrency_observer.errors import AwsError

# Lambda's limit on a function's environment variables, as it measures them.
VARIABLES_LIMIT_BYTES: Final = 4096
# A value shorter than this is not masked: "true" or "prod" would blank out unrelated words.
# (The echoes that quote every value, the 4 KB refusal's above all, are cut whole, whatever
# the values' length.)
MIN_MASKED_LENGTH: Final = 8
# Our own settings are not secrets, and the plans show them anyway.
OUR_PREFIX: Final = "CONCURRENCY_OBSERVER_"
# AWS's message longer than this is cut: what matters is at its start.
MAX_MESSAGE_CHARS: Final = 300
MASK: Final = "***"

# Everything after "String measured:", unless it was cut already (the CLI's net runs it again).
_MEASURED: Final = re.compile(r"(String measured:)(?! \(not shown).*", re.DOTALL | re.IGNORECASE)
_JSON_OBJECT: Final = re.compile(r"\{.*\}", re.DOTALL)
_SPACES: Final = re.compile(r"\s+")


def variables_size(variables: Mapping[str, str]) -> int:
    """The size Lambda measures: the bytes of the Variables map's compact JSON."""
    return len(json.dumps(dict(variables), separators=(",", ":")).encode())


def variables_over_limit(variables: Mapping[str, str]) -> str | None:
    """Why these variables would be refused (names and sizes only), or None if they fit."""
    size = variables_size(variables)
    if size <= VARIABLES_LIMIT_BYTES:
        return None
    largest = sorted(variables, key=lambda name: (-len(variables[name].encode()), name))[:3]
    named = ", ".join(f"{name} ({len(variables[name].encode())} bytes)" for name in largest)
    return (
        f"its environment variables would be {size} bytes as Lambda measures them (the compact "
        f"JSON of the map), over Lambda's 4 KB limit of {VARIABLES_LIMIT_BYTES}; largest: {named}"
    )


def secret_values(variables: Mapping[str, str]) -> tuple[str, ...]:
    """The values to mask: every variable's but our own settings'."""
    return tuple(v for name, v in variables.items() if not name.startswith(OUR_PREFIX))


def redacted(message: str, secrets: Iterable[str] = ()) -> str:
    """``message`` on one line, echoed request data cut and every value of ``secrets`` masked."""
    text = _MEASURED.sub(r"\1 (not shown: it quotes every variable's value)", message)
    text = _JSON_OBJECT.sub("{...}", text)
    for value in sorted({s for s in secrets if len(s) >= MIN_MASKED_LENGTH}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return _SPACES.sub(" ", text).strip()


def error_summary(error: Mapping[str, Any], variables: Mapping[str, str] | None = None) -> str:
    """``Code: message`` for an AWS error body (``ClientError.response['Error']``), redacted.

    With ``variables`` (what the call sent), the 4 KB refusal says which variables and how large.
    """
    code = str(error.get("Code") or "Error")
    message = str(error.get("Message") or "")
    secrets = secret_values(variables) if variables else ()
    if variables is not None and "4KB limit" in message:
        over = variables_over_limit(variables)
        if over:
            return f"{code}: {over}"
    text = redacted(message, secrets)
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 3] + "..."
    return f"{code}: {text}" if text else code


@contextmanager
def redacted_errors(action: str, variables: Mapping[str, str] | None = None) -> Iterator[None]:
    """Like ``aws_errors``, but an AWS refusal is shown as ``error_summary`` makes it."""
    from botocore.exceptions import ClientError  # noqa: PLC0415

    with aws_errors(action):
        try:
            yield
        except ClientError as exc:
            summary = error_summary(exc.response.get("Error", {}), variables)
            raise AwsError(f"{action}: {summary}") from exc
