"""MLflow's alias webhook reaching the operator on the real API server, under the chart's RBAC.

The operator runs as ``kopf run`` with only its ServiceAccount's token and its webhook receiver on a
free loopback port; a real MLflow server (the dev server's settings: http and loopback allowed, a 2 s
webhook-list cache) delivers the alias events it registered for. Every ModelAlias here polls once an
hour, so a move followed within the test can only have come through the webhook.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from btcf_operator.kube import KubeApi
from btcf_operator.webhook import WEBHOOK_PATH

from btcforecast import registry
from btcforecast.devservers.process import ManagedProcess, free_port
from btcforecast.mlflow_webhooks import server_env
from tests.fixtures.registry import RegisteredModel
from tests.k8s.nodesim import NodeSimulator
from tests.k8s.test_operator_lifecycle import (
    WAIT,
    create_modelalias,
    move_alias,
    ready_alias,
    settled,
    template_version,
    wait_phase,
)
from tests.operator import objects as o

pytest_plugins = ["tests.fixtures.kube", "tests.operator.cluster_fixtures"]
pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

HOURLY = 3600
"""pollSeconds: far beyond the test's bounds, so the poll never sees a move."""
SECRET = "kube-webhook-secret"
CACHE_TTL = float(server_env("unused")["MLFLOW_WEBHOOK_CACHE_TTL"])
"""How long the dev MLflow server keeps each event's webhook list (a new webhook misses moves meanwhile)."""


def webhook_env() -> dict[str, str]:
    """Operator settings: its receiver on a free loopback port, under a webhook name of its own."""
    port = free_port()
    return {
        "MLFLOW_WEBHOOK_URL": f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
        "MLFLOW_WEBHOOK_SECRET": SECRET,
        "WEBHOOK_PORT": str(port),
        "WEBHOOK_NAME": f"op-{uuid.uuid4().hex[:8]}",
    }


async def webhook_in_use(tracking_uri: str, name: str) -> None:
    """Wait until the operator has registered webhook ``name`` and MLflow's cached lists include it."""
    client = registry.connect(tracking_uri)
    await o.wait_for(
        lambda: asyncio.to_thread(client.list_webhooks),
        lambda hooks: any(h.name == name for h in hooks),
        timeout=WAIT,
        what=f"webhook {name} registered",
    )
    await asyncio.sleep(CACHE_TTL + 1)  # a precondition, not a measurement: the cached lists expire


async def test_an_alias_moved_in_mlflow_is_rolled_out_through_the_webhook_before_any_poll(
    admin: KubeApi,
    kube_namespace: str,
    node_simulator: NodeSimulator,
    start_operator: Callable[..., ManagedProcess],
    register_models: Callable[..., RegisteredModel],
) -> None:
    ns, model, env = kube_namespace, register_models(), webhook_env()
    _, ready = await ready_alias(
        admin, ns, start_operator, model, "staging", operator_env=env, poll_seconds=HOURLY
    )
    first = ready["resolvedVersion"]
    await webhook_in_use(model.tracking_uri, env["WEBHOOK_NAME"])

    moved = model.version_of("backtest_20250403")
    status = await move_alias(admin, ns, model, "staging", moved)

    assert moved != first
    assert (status["phase"], status["previousVersion"]) == ("Ready", first)
    assert template_version(await settled(admin, ns)) == moved


async def test_one_delivery_rolls_every_modelalias_that_follows_the_moved_alias(
    admin: KubeApi,
    kube_namespace: str,
    node_simulator: NodeSimulator,
    start_operator: Callable[..., ManagedProcess],
    register_models: Callable[..., RegisteredModel],
) -> None:
    ns, model, env = kube_namespace, register_models(), webhook_env()
    for name in ("predictor-a", "predictor-b"):
        await o.create(admin, ns, "deployments", o.deployment(name, replicas=1))
    start_operator(model.tracking_uri, **env)
    for name in ("a", "b"):
        await create_modelalias(
            admin, ns, name, model.name, "production", target=f"predictor-{name}", poll_seconds=HOURLY
        )
    await asyncio.gather(wait_phase(admin, ns, "a", "Ready"), wait_phase(admin, ns, "b", "Ready"))
    await webhook_in_use(model.tracking_uri, env["WEBHOOK_NAME"])

    moved = model.version_of("backtest_20250327")
    registry.set_alias(registry.connect(model.tracking_uri), model.name, "production", moved)

    def rolled(s: dict[str, Any]) -> bool:
        return (s.get("phase"), s.get("resolvedVersion")) == ("Ready", moved)

    await asyncio.gather(*(o.wait_status(admin, ns, n, rolled, timeout=WAIT, what=n) for n in ("a", "b")))
    versions = [template_version(await settled(admin, ns, d)) for d in ("predictor-a", "predictor-b")]
    assert versions == [moved, moved]
