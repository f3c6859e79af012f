"""The one place secrets are taken out of text before it is logged.

Every line ``log.Logger`` writes passes through ``redact``, and so does every error body the
extension quotes (CloudWatch's answers, the container credentials endpoint's), before it is cut
to its length: a cut could leave a secret's first half, which no longer matches it. The lines go
to the function's own log, read by people who must not see its credentials, at any log level.

Two ways, both needed:

- **Known values.** The secrets this process holds (the secret access key, the session token, the
  container authorization token and what its file says) are registered (``add_secret``) where
  they are read, and replaced wherever they appear: an endpoint that echoes a request echoes them
  in any form it likes.
- **Shapes.** What an echoed request shows without our knowing the value: ``Authorization`` and
  ``X-Amz-Security-Token`` (headers or query parameters), signatures, credential fields of a JSON
  answer, ``AWS_*SECRET*``/``AWS_*TOKEN*`` assignments, and the userinfo and query string of any
  URL or request target (a ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` may carry a token in either).

Every pattern starts at a fixed word and runs over one character class (no nested repetition),
and the text is first cut to its final length plus ``SECRET_SPAN`` (a secret that begins before
the final cut ends within that span, and is still matched whole): the work is bounded. A line
with none of the shapes' words, such as the INFO line at init, compiles no pattern at all.
"""

from __future__ import annotations

import re

MASK = "***"
SECRET_SPAN = 8192  # longer than any AWS credential (session tokens run to about 2 KB)
MIN_SECRET_LENGTH = 4  # a shorter "secret" would mask ordinary text everywhere

_secrets: set[str] = set()
_masked: list[str] = []  # every secret as is and stripped, longest first; built at first use
_encoded: list[str] = []  # every secret percent-encoded, longest first; built at first use
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")

# Words one of the shapes below starts with (lower case): a line with none of them, such as the
# one INFO line at init, is left alone without compiling a pattern (each costs init time).
_TRIGGERS = ("://", "?", "authorization", "token", "signature", "secret", "aws_")

# (pattern, replacement), applied in order. \g<1> keeps the part that names what is masked.
_SHAPE_SOURCES = (
    # scheme://user:password@host -> scheme://***@host
    (r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@?#'\"<>]+@", r"\g<1>" + MASK + "@"),
    # a URL's query string: ...?token=abc -> ...?***
    (r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s?#'\"<>]*)\?[^\s#'\"<>]*", r"\g<1>?" + MASK),
    # a request target's query string (an echoed request line): GET /creds?token=abc -> ?***
    (r"((?:^|[\s'\"=(])/[^\s?#'\"<>]*)\?[^\s#'\"<>]*", r"\g<1>?" + MASK),
    # Authorization: AWS4-HMAC-SHA256 Credential=..., Signature=... (header, form or JSON)
    (r"(?i)(authorization\"?\s*[:=]\s*\"?)[^\r\n&<\"]+", r"\g<1>" + MASK),
    # X-Amz-Security-Token, X-Amz-Signature, Signature, as headers or query parameters
    (
        r"(?i)((?:x-amz-security-token|x-amz-signature|signature)\"?\s*[:=]\s*\"?)"
        r"[^\s&<\"',;]+",
        r"\g<1>" + MASK,
    ),
    # "SecretAccessKey": "...", "Token": "..." (a credentials answer), or Token=... (a form);
    # not "ExpiredToken: The security token...", an error code and its message
    (
        r"(?i)((?:\"(?:secretaccesskey|secret_access_key|sessiontoken|session_token|token)"
        r"\"\s*:\s*\"?)|\b(?:secretaccesskey|secret_access_key|sessiontoken|session_token|token)"
        r"=)[^\s\"',}&<;]+",
        r"\g<1>" + MASK,
    ),
    # AWS_SECRET_ACCESS_KEY=..., AWS_SESSION_TOKEN=..., AWS_CONTAINER_AUTHORIZATION_TOKEN=...
    (r"(\bAWS_[A-Z_]*(?:SECRET|TOKEN)[A-Z_]*=)\S+", r"\g<1>" + MASK),
)
_shapes: list[tuple[re.Pattern[str], str]] = []


def add_secret(value: str | None) -> None:
    """Mask ``value`` (stripped or not, and percent-encoded, as a form or query echoes it)
    wherever it appears in redacted text. Cheap: the forms are made at the first ``redact``."""
    if value is not None and len(value.strip()) >= MIN_SECRET_LENGTH:
        _secrets.add(value)
        _masked.clear()
        _encoded.clear()


def forget_secrets() -> None:
    """Forget every registered secret (tests)."""
    _secrets.clear()
    _masked.clear()
    _encoded.clear()


def _percent_encoded(value: str) -> str:
    return "".join(
        c if c in _UNRESERVED else "".join(f"%{b:02X}" for b in c.encode()) for c in value
    )


def _forms(encoded: bool) -> list[str]:
    """The secrets as they are and stripped; with ``encoded``, percent-encoded too (built only
    for a text with a ``%``: a session token is a kilobyte, and the INFO line at init has none)."""
    if not _masked and _secrets:
        forms = {f for s in _secrets for f in (s, s.strip())}
        # The longest first: a secret that contains another is masked whole.
        _masked.extend(sorted((f for f in forms if len(f) >= MIN_SECRET_LENGTH), key=len)[::-1])
    if not encoded:
        return _masked
    if not _encoded and _secrets:
        forms = {_percent_encoded(s.strip()) for s in _secrets}
        _encoded.extend(sorted((f for f in forms if len(f) >= MIN_SECRET_LENGTH), key=len)[::-1])
    return _encoded + _masked


def redact(text: str, limit: int | None = None) -> str:
    """``text`` without any secret, cut to ``limit`` characters (``...`` marks a cut)."""
    if limit is not None and len(text) > limit + SECRET_SPAN:
        text = text[: limit + SECRET_SPAN]
    for secret in _forms("%" in text):
        if secret in text:
            text = text.replace(secret, MASK)
    lowered = text.lower()
    if any(trigger in lowered for trigger in _TRIGGERS):
        if not _shapes:
            _shapes.extend((re.compile(source), mask) for source, mask in _SHAPE_SOURCES)
        for pattern, replacement in _shapes:
            text = pattern.sub(replacement, text)
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 3, 0)] + "..."
    return text
