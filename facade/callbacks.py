"""Pushing results to a callback URL: signed, timed out, retried with exponential backoff and jitter.

The body is signed per attempt (``btcforecast.signing``: HMAC-SHA256 over ``"{timestamp}.{body}"``)
so a retry after a long wait still carries a fresh timestamp the receiver accepts. A 2xx answer is
a delivery; connection errors, timeouts, 408, 425, 429 and 5xx are retried; any other 4xx is final
(the receiver refused this body and will refuse it again).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from btcforecast.signing import SIGNATURE_HEADER, sign
from facade.metrics import delivery_outcome, record_delivery_attempt

JOB_HEADER = "X-Btcf-Job-Id"
_RETRYABLE_4XX = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    attempts: int
    status_code: int | None = None
    error: str | None = None


def encode_payload(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def backoff_delay(attempt: int, base: float, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Delay before retry ``attempt`` (1-based): ``base * 2**(attempt-1)``, capped, half of it jittered."""
    delay = min(cap, base * 2 ** (attempt - 1))
    return delay / 2 + delay / 2 * rng()


async def post_callback(
    url: str,
    payload: dict[str, Any],
    *,
    client: httpx.AsyncClient,
    secret: str | None = None,
    timeout: float = 10.0,
    retries: int = 5,
    backoff: float = 1.0,
    backoff_max: float = 60.0,
    on_attempt: Callable[[int, str | None], Awaitable[None]] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Delivery:
    """POST ``payload`` as signed JSON to ``url``; up to ``1 + retries`` attempts.

    ``on_attempt(attempt, error)`` runs after every attempt (error None on success), so a caller
    can record progress durably.
    """
    body = encode_payload(payload)
    job_id = str(payload.get("job_id", ""))
    error: str | None = None
    status: int | None = None
    attempts = 0
    for attempt in range(1, retries + 2):
        attempts = attempt
        headers = {"Content-Type": "application/json", JOB_HEADER: job_id}
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, body)
        retry = True
        try:
            response = await client.post(url, content=body, headers=headers, timeout=timeout)
            status = response.status_code
            if 200 <= status < 300:
                record_delivery_attempt(delivery_outcome(status, retryable=False))
                if on_attempt:
                    await on_attempt(attempt, None)
                return Delivery(delivered=True, attempts=attempt, status_code=status)
            error = f"receiver answered {status}: {response.text[:200]}"
            retry = status >= 500 or status in _RETRYABLE_4XX
            record_delivery_attempt(delivery_outcome(status, retry))
        except httpx.HTTPError as e:
            error = f"{type(e).__name__}: {str(e)[:200] or 'no detail'}"
            record_delivery_attempt(delivery_outcome(None, retryable=True))
        if on_attempt:
            await on_attempt(attempt, error)
        if not retry or attempt > retries:
            break
        await sleep(backoff_delay(attempt, backoff, backoff_max))
    return Delivery(delivered=False, attempts=attempts, status_code=status, error=error)
