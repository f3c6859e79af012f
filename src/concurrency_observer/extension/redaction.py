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

A known value may also come back disguised: percent-encoded (in either case, or twice), JSON-
escaped (``\\/``, ``\\u002F``), as XML character references, or in base64. ``holds_secret`` decodes
a text (each of those, repeatedly, a bounded number of rounds) and looks for every secret, and for
the base64 of each at the three byte alignments it can take inside a longer blob. An error body
that holds one in any form is not quoted at all (``quote_body``: the caller gives the status and
code only), and a log line that does is replaced by ``WITHHELD``: masking a form we decoded is not
possible in the text as written, and quoting the rest is not worth the risk.

Every pattern starts at a fixed word and runs over one character class (no nested repetition),
and the text is first cut to its final length plus ``SECRET_SPAN`` (a secret that begins before
the final cut ends within that span, and is still matched whole): the work is bounded. A line
with none of the shapes' words, such as the INFO line at init, compiles no pattern at all.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re

MASK = "***"
WITHHELD = "*** (withheld: it holds a credential in an encoded form)"
BODY_WITHHELD = "body not shown: it echoes a credential"
DECODE_ROUNDS = 4  # percent-encoded twice inside JSON inside XML is three; more is not an echo
MIN_BASE64_CORE = 8  # characters of a base64 form, below which it would match ordinary text
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
_base64: list[str] = []  # every secret's base64 forms; built at first use
# Escapes a decoding round undoes; a text with none of these characters is its own decoding.
_ESCAPE_MARKS = ("%", "\\", "&")
_PERCENT_RUN = r"(?:%[0-9A-Fa-f]{2})+"
_JSON_ESCAPE = r"\\(?:u([0-9A-Fa-f]{4})|([\"\\/bfnrt]))"
_XML_REFERENCE = r"&(?:#([0-9]{1,7})|#[xX]([0-9A-Fa-f]{1,6})|(amp|lt|gt|quot|apos));"
_JSON_SIMPLE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_XML_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_decoders: list[re.Pattern[str]] = []  # compiled at first use: most lines have no escape


def add_secret(value: str | None) -> None:
    """Mask ``value`` (stripped or not, and percent-encoded, as a form or query echoes it)
    wherever it appears in redacted text. Cheap: the forms are made at the first ``redact``."""
    if value is not None and len(value.strip()) >= MIN_SECRET_LENGTH:
        _secrets.add(value)
        _masked.clear()
        _encoded.clear()
        _base64.clear()


def forget_secrets() -> None:
    """Forget every registered secret (tests)."""
    _secrets.clear()
    _masked.clear()
    _encoded.clear()
    _base64.clear()


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


def _base64_forms() -> list[str]:
    """Each secret's base64 as it reads inside any longer base64 text: the secret's bytes start
    at one of three alignments, and the characters that mix in a neighbour's bits (the first
    group when not aligned, the last group always) are left out. Standard and URL-safe alphabets."""
    if not _base64 and _secrets:
        forms: set[str] = set()
        import binascii  # noqa: PLC0415 (a shared library to load: only once secrets are checked)

        for secret in {s.strip() for s in _secrets}:
            for alignment in range(3):
                encoded = binascii.b2a_base64(b"\0" * alignment + secret.encode(), newline=False)
                core = encoded.decode()[4 if alignment else 0 : -4]
                if len(core) >= MIN_BASE64_CORE:
                    forms.update((core, core.replace("+", "-").replace("/", "_")))
        _base64.extend(sorted(forms, key=len)[::-1])
    return _base64


def _percent_decoded(match: re.Match[str]) -> str:
    return bytes.fromhex(match.group(0).replace("%", "")).decode("utf-8", "replace")


def _json_decoded(match: re.Match[str]) -> str:
    code, simple = match.group(1), match.group(2)
    if code is not None:
        return chr(int(code, 16))
    return _JSON_SIMPLE.get(simple, simple)


def _xml_decoded(match: re.Match[str]) -> str:
    decimal, hexadecimal, name = match.groups()
    if name is not None:
        return _XML_NAMED[name]
    code = int(decimal) if decimal is not None else int(hexadecimal, 16)
    return chr(code) if code < 0x110000 else match.group(0)


def decoded(text: str) -> str:
    """``text`` with percent-escapes (either case), JSON escapes and XML references undone,
    round after round until nothing changes (at most ``DECODE_ROUNDS``)."""
    if not _decoders:
        # re is imported at the first text that needs it (about 6 ms): the extension's init
        # path, before its first /event/next, has nothing to decode or mask.
        import re  # noqa: PLC0415

        _decoders.extend(re.compile(p) for p in (_PERCENT_RUN, _JSON_ESCAPE, _XML_REFERENCE))
    percent, json_escape, xml_reference = _decoders
    for _ in range(DECODE_ROUNDS):
        if not any(mark in text for mark in _ESCAPE_MARKS):
            break
        before = text
        text = percent.sub(_percent_decoded, text)
        text = json_escape.sub(_json_decoded, text)
        text = xml_reference.sub(_xml_decoded, text)
        if text == before:
            break
    return text


def holds_secret(text: str) -> bool:
    """Whether ``text`` holds a registered secret in any form: as is, decoded (``decoded``),
    or in base64."""
    if not _secrets:
        return False
    plain = decoded(text) if any(mark in text for mark in _ESCAPE_MARKS) else text
    forms = _forms(False)
    if any(secret in plain for secret in forms):
        return True
    return any(form in plain or form in text for form in _base64_forms())


def quote_body(text: str, limit: int) -> str | None:
    """An error body as a log line may quote it (``redact``ed, cut to ``limit``), or ``None``
    when it holds a secret in any form: then the caller gives the status and code only."""
    head = text[: limit + SECRET_SPAN]
    if holds_secret(head):
        return None
    return redact(head, limit)


def redact(text: str, limit: int | None = None) -> str:
    """``text`` without any secret, cut to ``limit`` characters (``...`` marks a cut);
    ``WITHHELD`` when a secret in a disguised form is still there after the masking."""
    if limit is not None and len(text) > limit + SECRET_SPAN:
        text = text[: limit + SECRET_SPAN]
    for secret in _forms("%" in text):
        if secret in text:
            text = text.replace(secret, MASK)
    lowered = text.lower()
    if any(trigger in lowered for trigger in _TRIGGERS):
        if not _shapes:
            import re  # noqa: PLC0415 (at first use, as in decoded)

            _shapes.extend((re.compile(source), mask) for source, mask in _SHAPE_SOURCES)
        for pattern, replacement in _shapes:
            text = pattern.sub(replacement, text)
    if holds_secret(text):
        return WITHHELD
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 3, 0)] + "..."
    return text
