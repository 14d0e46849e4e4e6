"""The real operator and a real MLflow server: alias moves arrive as signed webhooks.

The ModelAliases here poll once an hour (pollSeconds 3600), so a move followed at once can only
have come through the webhook; with the receiver unreachable, a one-second poll still follows.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
from btcf_operator.kube import KubeApi
from btcf_operator.webhook import WEBHOOK_PATH

from btcforecast import registry
from btcforecast.devservers.process import free_port
from btcforecast.mlflow_webhooks import ALIAS_CREATED
from tests.fixtures.registry import RegisteredModel
from tests.operator import objects as o

pytestmark = pytest.mark.timeout(300)
SECRET = "operator-webhook-secret"
HOURLY = 3600


def webhook_env(url: str, port: int, name: str) -> dict[str, str]:
    return {
        "MLFLOW_WEBHOOK_URL": url,
        "MLFLOW_WEBHOOK_SECRET": SECRET,
        "WEBHOOK_PORT": str(port),
        "WEBHOOK_NAME": name,
    }


async def registered_webhook(tracking_uri: str, name: str) -> str:
    """Wait until the operator has registered its webhook; its id."""
    client = registry.connect(tracking_uri)

    async def find() -> list[str]:
        return [w.webhook_id for w in await asyncio.to_thread(client.list_webhooks) if w.name == name]

    return (await o.wait_for(find, bool, what=f"webhook {name} registered"))[0]


async def ready_at(kube: KubeApi, namespace: str, model: RegisteredModel, alias: str) -> str:
    await o.create(kube, namespace, "deployments", o.deployment("predictor"))
    await o.create(
        kube, namespace, "modelaliases", o.model_alias("ma", model.name, alias, poll_seconds=HOURLY)
    )
    first = model.version_of(alias)
    await o.wait_pinned(kube, namespace, "deployments", "predictor", first)
    await o.roll_deployment(kube, namespace, "predictor")
    await o.wait_status(kube, namespace, "ma", lambda s: s.get("phase") == "Ready", what="Ready")
    return first


async def move_until_pinned(
    kube: KubeApi, namespace: str, model: RegisteredModel, alias: str, version: str
) -> dict:
    """Move the alias in MLflow, again while the target is not pinned yet.

    MLflow caches each event's webhook list (MLFLOW_WEBHOOK_CACHE_TTL): a webhook registered just
    before a move may miss that one event, never the ones after.
    """
    client = registry.connect(model.tracking_uri)
    for _ in range(10):
        registry.set_alias(client, model.name, alias, version)
        try:
            return await asyncio.wait_for(
                o.wait_pinned(kube, namespace, "deployments", "predictor", version), 10
            )
        except TimeoutError:
            continue
    return await o.get(kube, namespace, "deployments", "predictor")


async def test_an_alias_moved_in_mlflow_is_rolled_out_through_the_webhook_without_a_poll(
    kube: KubeApi, namespace: str, start_operator, register_models: Callable[..., RegisteredModel]
) -> None:
    model, port, name = register_models(), free_port(), f"op-{uuid.uuid4().hex[:8]}"
    start_operator(model.tracking_uri, **webhook_env(f"http://127.0.0.1:{port}{WEBHOOK_PATH}", port, name))
    first = await ready_at(kube, namespace, model, "staging")
    await registered_webhook(model.tracking_uri, name)

    moved = model.version_of("backtest_20250403")
    assert moved != first
    dep = await move_until_pinned(kube, namespace, model, "staging", moved)

    assert o.pinned_version(dep) == moved
    status = (await o.get(kube, namespace, "modelaliases", "ma"))["status"]
    assert (status["phase"], status["targetVersion"]) == ("RollingOut", moved)


async def test_with_the_webhook_receiver_unreachable_the_poll_still_follows(
    kube: KubeApi, namespace: str, start_operator, register_models: Callable[..., RegisteredModel]
) -> None:
    model, dead, name = register_models(), free_port(), f"op-{uuid.uuid4().hex[:8]}"
    start_operator(
        model.tracking_uri, **webhook_env(f"http://127.0.0.1:{dead}{WEBHOOK_PATH}", free_port(), name)
    )
    await o.create(kube, namespace, "deployments", o.deployment("predictor"))
    await o.create(
        kube, namespace, "modelaliases", o.model_alias("ma", model.name, "staging", poll_seconds=1)
    )
    await o.wait_pinned(kube, namespace, "deployments", "predictor", model.version_of("staging"))
    await o.roll_deployment(kube, namespace, "predictor")
    await o.wait_status(kube, namespace, "ma", lambda s: s.get("phase") == "Ready", what="Ready")
    await registered_webhook(model.tracking_uri, name)

    moved = model.version_of("backtest_20250403")
    registry.set_alias(registry.connect(model.tracking_uri), model.name, "staging", moved)

    await o.wait_pinned(kube, namespace, "deployments", "predictor", moved)


async def test_a_delivery_mlflow_signs_with_another_secret_is_refused_and_changes_nothing(
    kube: KubeApi, namespace: str, start_operator, register_models: Callable[..., RegisteredModel]
) -> None:
    model, port, name = register_models(), free_port(), f"op-{uuid.uuid4().hex[:8]}"
    url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    start_operator(model.tracking_uri, **webhook_env(url, port, name))
    first = await ready_at(kube, namespace, model, "staging")
    await registered_webhook(model.tracking_uri, name)
    client = registry.connect(model.tracking_uri)
    rogue = client.create_webhook(
        name=f"rogue-{uuid.uuid4().hex[:8]}", url=url, events=[ALIAS_CREATED], secret="not-the-secret"
    )
    before = await o.get(kube, namespace, "modelaliases", "ma")

    try:
        result = await asyncio.to_thread(client.test_webhook, rogue.webhook_id, ALIAS_CREATED)
    finally:
        client.delete_webhook(rogue.webhook_id)

    assert result.response_status == 401
    after = await o.get(kube, namespace, "modelaliases", "ma")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert o.pinned_version(await o.get(kube, namespace, "deployments", "predictor")) == first
