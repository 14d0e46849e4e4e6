"""Signed callbacks: one definition of the signature the facade writes and the receiver checks.

The signature is HMAC-SHA256 over ``f"{timestamp}.{body}"`` with the shared ``CALLBACK_SECRET``,
sent as ``X-Btcf-Signature: t=<unix seconds>,v1=<hex>``. Signing the timestamp with the body lets
the receiver refuse replays of an old delivery; ``v1`` leaves room for a second scheme later.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from btcforecast.errors import InputError

SIGNATURE_HEADER = "X-Btcf-Signature"
SCHEME = "v1"


class SignatureError(InputError):
    """A signature header that is missing, malformed, stale or does not match the body."""


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(int(timestamp)).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value for ``body``: ``t=<ts>,v1=<hex>``."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={ts},{SCHEME}={compute_signature(secret, ts, body)}"


def parse_header(value: str) -> tuple[int, list[str]]:
    """(timestamp, v1 signatures) from a header value; raise SignatureError when malformed."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in value.split(","):
        key, sep, item = part.strip().partition("=")
        if not sep:
            raise SignatureError(f"signature header part {part.strip()[:40]!r} is not key=value")
        if key == "t":
            try:
                timestamp = int(item)
            except ValueError as e:
                raise SignatureError("signature timestamp is not an integer") from e
        elif key == SCHEME:
            signatures.append(item)
    if timestamp is None:
        raise SignatureError("signature header has no timestamp (t=)")
    if not signatures:
        raise SignatureError(f"signature header has no {SCHEME}= signature")
    return timestamp, signatures


def verify(secret: str, header: str | None, body: bytes, *, max_skew: float, now: float | None = None) -> int:
    """Check ``header`` against ``body``; return its timestamp or raise SignatureError naming why."""
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    timestamp, signatures = parse_header(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > max_skew:
        raise SignatureError(f"signature timestamp is stale (more than {max_skew:.0f} s from now)")
    expected = compute_signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise SignatureError("signature does not match the body")
    return timestamp
