"""What makes a pushed result acceptable: size, signature, freshness and a job id.

Plain functions so the rules are tested without a server; the route only maps errors to statuses.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from btcforecast.errors import InputError
from btcforecast.signing import SignatureError, verify

__all__ = [
    "BodyTooLarge",
    "InvalidResult",
    "SignatureError",
    "check_signature",
    "parse_result",
    "read_limited",
]


class BodyTooLarge(InputError):
    """The body is over the configured limit (413)."""


class InvalidResult(InputError):
    """The body is not a JSON object with a usable ``job_id`` (400)."""


async def read_limited(chunks: AsyncIterator[bytes], limit: int, declared: str | None = None) -> bytes:
    """The whole body, refusing early when Content-Length or the bytes read pass ``limit``."""
    if declared is not None:
        try:
            if int(declared) > limit:
                raise BodyTooLarge(f"body of {int(declared)} bytes is over the {limit}-byte limit")
        except ValueError as e:
            if isinstance(e, BodyTooLarge):
                raise
            raise InvalidResult("Content-Length is not a number") from e
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"body is over the {limit}-byte limit")
    return bytes(body)


def check_signature(secret: str | None, header: str | None, body: bytes, max_skew: float) -> int | None:
    """The signed timestamp, or None when no secret is configured (signatures not required)."""
    if secret is None:
        return None
    return verify(secret, header, body, max_skew=max_skew)


def parse_result(body: bytes) -> tuple[str, dict[str, Any]]:
    """(job_id, payload) from a result body."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidResult(f"body is not valid JSON: {e}") from e
    if not isinstance(payload, dict):
        raise InvalidResult("body must be a JSON object")
    job_id = payload.get("job_id")
    if not isinstance(job_id, str) or not job_id or len(job_id) > 128:
        raise InvalidResult("body needs a string job_id (1-128 characters)")
    return job_id, payload
