"""MLflow registry webhooks for alias moves: register one, verify a delivery, read the event.

MLflow 3 (experimental, SQL backends only) POSTs ``{"entity", "action", "timestamp", "data"}`` to
every active webhook subscribed to an event, from a thread pool inside the tracking server (not the
job-execution machinery, so ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`` does not stop it). A
webhook with a secret is signed the Standard Webhooks way: header ``X-MLflow-Signature`` is
``v1,<base64 HMAC-SHA256(secret, "<delivery id>.<timestamp>.<body>")>``, with the delivery id and
the Unix timestamp in ``X-MLflow-Delivery-Id`` and ``X-MLflow-Timestamp``. Retries (urllib3, on
429/5xx, backoff 1, 2, 4 s) resend the same headers, so the timestamp tolerance must cover them;
Standard Webhooks' five minutes does. See docs/webhooks.md for the server settings it takes.

Used by the operator (reconcile the ModelAlias that follows the alias) and by the facade
(invalidate its alias cache); both register their own webhook at start, by name.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from mlflow.entities.webhook import Webhook, WebhookStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from btcforecast.errors import InputError

logger = logging.getLogger(__name__)

ALIAS_CREATED = "model_version_alias.created"
ALIAS_DELETED = "model_version_alias.deleted"
ALIAS_EVENTS = (ALIAS_CREATED, ALIAS_DELETED)

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
SIGNATURE_VERSION = "v1"
TOLERANCE_SECONDS = 300
"""Standard Webhooks' replay window; MLflow's retries resend the first attempt's timestamp."""


class WebhookSettings(BaseSettings):
    """Where MLflow should call this component, and the shared signing secret (both or neither)."""

    mlflow_webhook_url: str | None = Field(
        None,
        description="URL MLflow POSTs alias events to (this component's webhook route); unset = poll only",
    )
    mlflow_webhook_secret: SecretStr | None = Field(
        None, description="HMAC key MLflow signs deliveries with; required when the webhook URL is set"
    )

    @property
    def webhook_secret(self) -> str | None:
        return self.mlflow_webhook_secret.get_secret_value() if self.mlflow_webhook_secret else None


def server_env(encryption_key: str, cache_ttl_seconds: int = 2) -> dict[str, str]:
    """What a local or in-cluster MLflow server needs to deliver webhooks to its peers.

    MLflow refuses ``http://`` and private or loopback addresses by default (an SSRF guard), caches
    each event's webhook list for 60 s (a webhook registered after an event was seen waits that
    long), and encrypts stored secrets with a random per-process key unless one is given (a restart
    could then no longer read them).
    """
    return {
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_CACHE_TTL": str(cache_ttl_seconds),
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": encryption_key,
    }


class SignatureError(InputError):
    """A delivery whose signature, timestamp or headers do not check out (HTTP 401)."""


@dataclass(frozen=True)
class AliasEvent:
    """An alias of a registered model was set (to ``version``) or deleted (``version`` is None)."""

    model: str
    alias: str
    action: Literal["created", "deleted"]
    version: str | None = None


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The ``X-MLflow-Signature`` value MLflow sends for this delivery."""
    content = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: float = TOLERANCE_SECONDS,
) -> None:
    """Raise :class:`SignatureError` unless ``body`` was signed with ``secret`` within ``tolerance``.

    ``headers`` must look names up case-insensitively (Starlette's and aiohttp's do). The comparison
    is constant-time; a header may carry several space-separated signatures (key rotation).
    """
    delivery_id = headers.get(DELIVERY_ID_HEADER)
    timestamp = headers.get(TIMESTAMP_HEADER)
    signatures = headers.get(SIGNATURE_HEADER)
    if not delivery_id or not timestamp or not signatures:
        raise SignatureError("missing webhook signature headers")
    try:
        sent = int(timestamp)
    except ValueError as e:
        raise SignatureError("malformed webhook timestamp") from e
    now = time.time() if now is None else now
    if abs(now - sent) > tolerance:
        raise SignatureError(f"webhook timestamp outside the {tolerance:.0f} s tolerance")
    expected = sign(secret, delivery_id, timestamp, body).encode()
    if not any(hmac.compare_digest(expected, s.encode()) for s in signatures.split()):
        raise SignatureError("webhook signature does not match")


def parse_alias_event(body: bytes) -> AliasEvent | None:
    """The alias event a delivery carries; None for any other event (a webhook's test ping, say)."""
    try:
        payload = json.loads(body)
        entity, action, data = payload["entity"], payload["action"], payload["data"]
    except (ValueError, KeyError, TypeError) as e:
        raise InputError("not an MLflow webhook payload") from e
    if entity != "model_version_alias" or action not in ("created", "deleted"):
        return None
    try:
        model, alias = str(data["name"]), str(data["alias"])
    except (KeyError, TypeError) as e:
        raise InputError("alias event without name and alias") from e
    version = data.get("version") if action == "created" else None
    return AliasEvent(
        model=model, alias=alias, action=action, version=None if version is None else str(version)
    )


def _all_webhooks(client: MlflowClient) -> list[Webhook]:
    webhooks: list[Webhook] = []
    token: str | None = None
    while True:
        page = client.list_webhooks(max_results=100, page_token=token)
        webhooks.extend(page)
        token = page.token
        if not token:
            return webhooks


def register_webhook(
    client: MlflowClient,
    name: str,
    url: str,
    secret: str,
    events: tuple[str, ...] = ALIAS_EVENTS,
    description: str = "btc-forecast: follow alias moves",
) -> Webhook:
    """Make the webhook called ``name`` exist once, active, with this URL, secret and events.

    Idempotent: an existing webhook of that name is updated (MLflow never returns a secret, so it is
    always rewritten) and any duplicates (names are not unique in MLflow) are deleted. Raises
    ``MlflowException`` when MLflow refuses (for instance a URL its SSRF guard rejects) and
    ``requests`` errors when it cannot be reached.
    """
    same = sorted((w for w in _all_webhooks(client) if w.name == name), key=lambda w: w.creation_timestamp)
    if not same:
        return client.create_webhook(
            name=name, url=url, events=list(events), description=description, secret=secret
        )
    keep, *extra = same
    for webhook in extra:
        with contextlib.suppress(MlflowException):  # deleted by a concurrent registration
            client.delete_webhook(webhook.webhook_id)
    return client.update_webhook(
        keep.webhook_id,
        url=url,
        events=list(events),
        description=description,
        secret=secret,
        status=WebhookStatus.ACTIVE,
    )


async def keep_registered(
    tracking_uri: str, name: str, url: str, secret: str, *, first_delay: float, max_delay: float
) -> None:
    """Register the webhook, retrying with backoff while MLflow is unreachable or refuses.

    Started as a task when a component starts; its polling (or cache bound) covers meanwhile.
    """
    from btcforecast import registry  # the project's MLflow client settings; heavy, so not at import

    delay = first_delay
    while True:
        try:
            client = registry.connect(tracking_uri)
            webhook = await asyncio.to_thread(register_webhook, client, name, url, secret)
        except Exception as e:  # MLflow down, or refusing the URL: try again later
            logger.warning("MLflow webhook %s not registered (retry in %.0f s): %s", name, delay, e)
            await asyncio.sleep(delay)
            delay = min(max_delay, delay * 2)
            continue
        logger.info("MLflow webhook %s registered (%s -> %s)", name, webhook.webhook_id, url)
        return
