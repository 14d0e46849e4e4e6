"""The kopf entry point: ``kopf run --standalone -m btcf_operator.main --all-namespaces``.

Handlers are thin: they find this resource's state, call :func:`btcf_operator.reconcile.reconcile`
and turn "try again later" into ``kopf.TemporaryError``. Create, resume (operator start) and spec
changes act at once; a follower task per resource takes a short fixed-interval look
(``PROGRESS_INTERVAL``) that checks a rollout in progress and asks MLflow again once
``spec.pollSeconds`` have passed; with ``MLFLOW_WEBHOOK_SECRET`` set, MLflow's alias webhook wakes a
follower at once (:mod:`btcf_operator.webhook`), and the poll is the fallback.

The followers are plain asyncio tasks started and stopped from the resource's watch events, not
kopf daemons or timers: kopf puts its finalizer on every resource that has a daemon, a timer or a
mandatory deletion handler, and nothing here needs a last word before a ModelAlias goes (the target
belongs to whoever created it). Without a finalizer, deleting the operator together with its
ModelAliases (``helm uninstall``) can never leave one stuck in ``Terminating``; an operator of an
older release that did put the finalizer on is replaced by this one, which takes it off (kopf
removes its finalizer from resources that no longer need it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import httpx
import kopf
from aiohttp import web

from btcf_operator import metrics
from btcf_operator.follow import Followers, follow
from btcf_operator.kube import KubeApi
from btcf_operator.reconcile import reconcile
from btcf_operator.registry import AliasResolver
from btcf_operator.settings import get_settings
from btcf_operator.spec import SpecError
from btcf_operator.step import Context, InvalidTarget, ObjectState, RetryLater
from btcf_operator.webhook import AliasIndex, serve, webhook_app
from btcforecast.kube import KubeError, KubeUnavailable, api_client
from btcforecast.mlflow_webhooks import keep_registered
from btcforecast.modelalias import GROUP, PLURAL, VERSION

RESOURCE = (GROUP, VERSION, PLURAL)
_STATE_KEY = "btcf_state"


def post_event(body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    """A Kubernetes Event on the ModelAlias, through kopf's event poster."""
    kopf.event(dict(body), type=type_, reason=str(reason), message=message[:1000])  # type: ignore[arg-type]


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config = get_settings()
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    timeout = httpx.Timeout(config.hotreload_timeout, connect=5.0)
    memo.ctx = Context(
        settings=config,
        kube=KubeApi(api_client(), timeout=config.kube_timeout),
        resolver=AliasResolver(config.mlflow_tracking_uri),
        http=httpx.AsyncClient(timeout=timeout, trust_env=False),
        post_event=post_event,
    )
    memo.followers = Followers()
    if config.metrics_port is not None:
        memo.metrics_server = await metrics.serve(config.metrics_host, config.metrics_port)
    memo.aliases = AliasIndex()
    secret = config.webhook_secret
    if secret:  # the receiver: MLflow's alias events wake the followers (polling stays the fallback)
        memo.webhook = await serve(
            webhook_app(secret, memo.aliases), config.webhook_host, config.webhook_port
        )
        if config.mlflow_webhook_url:
            memo.registration = asyncio.create_task(
                keep_registered(
                    config.mlflow_tracking_uri,
                    config.webhook_name,
                    config.mlflow_webhook_url,
                    secret,
                    first_delay=config.retry_initial_seconds,
                    max_delay=config.retry_max_seconds,
                )
            )


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    followers: Followers | None = memo.get("followers")
    if followers is not None:
        await followers.stop_all()
    registration: asyncio.Task[None] | None = memo.get("registration")
    if registration is not None:
        registration.cancel()
    webhook: web.AppRunner | None = memo.get("webhook")
    if webhook is not None:
        await webhook.cleanup()
    ctx: Context | None = memo.get("ctx")
    if ctx is not None:
        await ctx.http.aclose()
        ctx.kube.close()
    server = memo.get("metrics_server")
    if server is not None:
        await server.cleanup()


def _state(memo: kopf.Memo) -> ObjectState:
    state = memo.get(_STATE_KEY)
    if state is None:
        state = memo[_STATE_KEY] = ObjectState()
    return state


@kopf.on.create(*RESOURCE)
@kopf.on.resume(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
async def act_on_spec(name: str, namespace: str, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    """New resource, operator restart or changed spec: act now (or continue a rollout)."""
    try:
        await reconcile(memo.ctx, namespace, name, _state(memo), force=True)
    except SpecError as e:
        raise kopf.PermanentError(str(e)) from e
    except InvalidTarget as e:  # the status says so; the follower looks again with backoff
        logger.warning("%s (next look in %.0f s)", e, e.delay)
    except RetryLater as e:
        raise kopf.TemporaryError(str(e), delay=e.delay) from e
    except (KubeError, KubeUnavailable) as e:
        raise kopf.TemporaryError(
            f"Kubernetes API: {e}", delay=memo.ctx.settings.retry_initial_seconds
        ) from e


@kopf.on.event(*RESOURCE)
async def track(
    type: str | None,
    name: str,
    namespace: str,
    meta: Mapping[str, Any],
    spec: Mapping[str, Any],
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Keep one follower running per existing resource: started on any event, stopped on deletion."""
    followers: Followers = memo.followers
    key = (namespace, name)
    if type == "DELETED" or meta.get("deletionTimestamp"):
        memo.aliases.remove(key)
        await followers.stop(key)
        metrics.forget(namespace, name)
        return
    state = _state(memo)
    memo.aliases.update(key, spec, state)
    followers.ensure(key, lambda: follow(memo.ctx, namespace, name, state))
