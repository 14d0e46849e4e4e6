"""MLflow's alias webhook for the operator: which ModelAliases follow an alias, and waking them.

A verified ``model_version_alias.created`` / ``.deleted`` delivery wakes the follower of every
ModelAlias that follows that (registered model, alias): its next step runs at once and asks MLflow,
instead of waiting out ``spec.pollSeconds``, which stays the fallback for a missed delivery. The
follower is woken in-process rather than by patching an annotation on the resource (the usual way
to poke a kopf handler from outside): the receiver runs in the operator itself, so a wake-up costs
no API write, no watch round trip and no new resourceVersion, and the step still runs under the
per-resource lock with the follower's error handling.

:func:`deliver` is the plain core (verify, parse, wake); :func:`webhook_app` the aiohttp edge,
served on its own port beside kopf's (aiohttp comes with kopf).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from btcf_operator import metrics
from btcf_operator.step import ObjectState
from btcforecast.errors import InputError
from btcforecast.mlflow_webhooks import (
    DELIVERY_ID_HEADER,
    AliasEvent,
    SignatureError,
    parse_alias_event,
    verify,
)

logger = logging.getLogger(__name__)

Key = tuple[str, str]
"""(namespace, name) of a ModelAlias."""

WEBHOOK_PATH = "/mlflow-webhook"
PROBLEM = "application/problem+json"


@dataclass
class _Followed:
    model: str
    alias: str
    state: ObjectState


class AliasIndex:
    """Which resource follows which (registered model, alias), kept current from the watch events."""

    def __init__(self) -> None:
        self._by_key: dict[Key, _Followed] = {}

    def update(self, key: Key, spec: Mapping[str, Any], state: ObjectState) -> None:
        model, alias = spec.get("registeredModel"), spec.get("alias")
        if isinstance(model, str) and isinstance(alias, str):
            self._by_key[key] = _Followed(model, alias, state)
        else:
            self._by_key.pop(key, None)

    def remove(self, key: Key) -> None:
        self._by_key.pop(key, None)

    def following(self, model: str, alias: str) -> list[Key]:
        return sorted(k for k, f in self._by_key.items() if (f.model, f.alias) == (model, alias))

    def wake(self, event: AliasEvent) -> list[Key]:
        """Wake the followers of the event's alias; the keys woken."""
        keys = self.following(event.model, event.alias)
        for key in keys:
            self._by_key[key].state.wake()
        return keys


def deliver(secret: str, headers: Mapping[str, str], body: bytes, index: AliasIndex) -> list[Key]:
    """Verify one delivery and wake the ModelAliases it concerns.

    Raises :class:`SignatureError` (nothing is woken) or ``InputError`` for a body that is not an
    MLflow event. Other events (a webhook test ping) wake nothing.
    """
    verify(secret, headers, body)
    event = parse_alias_event(body)
    if event is None:
        return []
    keys = index.wake(event)
    logger.info(
        "alias %s/%s %s (version %s): woke %s",
        event.model,
        event.alias,
        event.action,
        event.version or "-",
        keys or "nothing",
    )
    return keys


def _problem(status: int, title: str, detail: str) -> web.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return web.json_response(body, status=status, content_type=PROBLEM)


def webhook_app(secret: str, index: AliasIndex) -> web.Application:
    """``POST /mlflow-webhook``: 200 ``{"woken": ["ns/name", ...]}``, 401 for a bad signature."""

    async def receive(request: web.Request) -> web.Response:
        logger.debug("MLflow webhook delivery %s received", request.headers.get(DELIVERY_ID_HEADER, "-"))
        body = await request.read()
        try:
            keys = deliver(secret, request.headers, body, index)
        except SignatureError as e:
            logger.warning("refused an MLflow webhook delivery: %s", e)
            metrics.record_webhook_delivery("bad_signature")
            return _problem(401, "Unauthorized", str(e))
        except InputError as e:
            metrics.record_webhook_delivery("invalid")
            return _problem(400, "Bad Request", str(e))
        metrics.record_webhook_delivery("accepted" if keys else "ignored")
        return web.json_response({"woken": [f"{ns}/{name}" for ns, name in keys]})

    app = web.Application(client_max_size=64 * 1024)
    app.router.add_post(WEBHOOK_PATH, receive)
    return app


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
