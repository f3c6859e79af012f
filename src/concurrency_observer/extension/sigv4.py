"""AWS Signature Version 4 for one request, with the standard library (``hmac``, ``hashlib``).

Only the ``cloudwatch`` sink imports this module. Tests check it against botocore's own
``SigV4Auth`` (same credentials, clock and request: identical ``Authorization`` headers).
"""

from __future__ import annotations

import hashlib
import hmac
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from concurrency_observer.extension.config import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def uri_encode(text: str, safe: str = "") -> str:
    """Percent-encode UTF-8 ``text`` as SigV4 wants: unreserved characters and ``safe`` kept."""
    keep = _UNRESERVED | frozenset(safe.encode())
    return "".join(chr(b) if b in keep else f"%{b:02X}" for b in text.encode("utf-8"))


def amz_date(timestamp: float) -> str:
    """``YYYYMMDDTHHMMSSZ`` for an epoch timestamp."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(timestamp))


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def canonical_request(
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Sequence[tuple[str, str]],
    body: bytes,
) -> tuple[str, str]:
    """The canonical request and the signed-headers list (``headers`` must include ``host``)."""
    canonical_query = "&".join(
        f"{k}={v}" for k, v in sorted((uri_encode(k), uri_encode(v)) for k, v in query)
    )
    folded: dict[str, list[str]] = {}
    for name, header_value in headers:
        folded.setdefault(name.lower().strip(), []).append(" ".join(header_value.split()))
    names = sorted(folded)
    canonical_headers = "".join(f"{name}:{','.join(folded[name])}\n" for name in names)
    signed_headers = ";".join(names)
    request = "\n".join(
        (
            method.upper(),
            uri_encode(path or "/", safe="/"),
            canonical_query,
            canonical_headers,
            signed_headers,
            hashlib.sha256(body).hexdigest(),
        )
    )
    return request, signed_headers


def sign(
    *,
    method: str,
    host: str,
    path: str,
    query: Sequence[tuple[str, str]] = (),
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    credentials: Credentials,
    region: str,
    service: str,
    timestamp: float,
) -> list[tuple[str, str]]:
    """The headers to add: ``X-Amz-Date``, ``X-Amz-Security-Token`` if any, ``Authorization``.

    Every header in ``headers`` is signed, plus ``host`` (give the Host header's exact value,
    without a default port) and the added ``X-Amz-*`` headers.
    """
    date_time = amz_date(timestamp)
    added = [("X-Amz-Date", date_time)]
    if credentials.session_token:
        added.append(("X-Amz-Security-Token", credentials.session_token))
    request, signed_headers = canonical_request(
        method, path, query, [("host", host), *headers, *added], body
    )
    scope = f"{date_time[:8]}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        (ALGORITHM, date_time, scope, hashlib.sha256(request.encode("utf-8")).hexdigest())
    )
    key = ("AWS4" + credentials.secret_access_key).encode("utf-8")
    for part in (date_time[:8], region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    authorization = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return [*added, ("Authorization", authorization)]
