"""The facade's /reload in cluster mode on the real API server, with the chart's facade ServiceAccount.

The facade holds only its ServiceAccount's token (the chart's Role: get/watch/patch of its one
ModelAlias); the operator runs as ``kopf run`` with its own; the Deployment and ReplicaSet
controllers are real and the node simulator plays the kubelet.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from btcf_operator.kube import KubeApi

from btcforecast.devservers.process import ManagedProcess
from tests.facade.inprocess import offline_facade, offline_settings
from tests.fixtures.registry import RegisteredModel
from tests.k8s.nodesim import NodeSimulator, always_ready
from tests.operator import objects as o

pytest_plugins = ["tests.fixtures.kube", "tests.operator.cluster_fixtures"]
pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

WAIT = 180.0
MODELALIAS = "btc-lstm-production"
"""The chart's default ModelAlias name: the one its facade Role names."""


@pytest.fixture(scope="module")
def model(register_models: Callable[..., RegisteredModel]) -> RegisteredModel:
    return register_models()


def facade(
    tmp_path: Path, namespace: str, model: str, *, modelalias: str = MODELALIAS
) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """The facade app with RELOAD_MODE=cluster (credentials: KUBECONFIG, the facade's token)."""
    settings = offline_settings(
        tmp_path,
        model_name=model,
        reload_mode="cluster",
        modelalias_name=modelalias,
        modelalias_namespace=namespace,
        cluster_reload_timeout=WAIT,
    )
    return offline_facade(settings, timeout=WAIT + 30)


def pod_version(pod: dict[str, Any]) -> str | None:
    env = pod["spec"]["containers"][0].get("env") or []
    return next((e.get("value") for e in env if e["name"] == "MODEL_VERSION"), None)


@pytest.fixture
async def served(
    admin: KubeApi,
    kube_namespace: str,
    node_simulator: NodeSimulator,
    start_operator: Callable[..., ManagedProcess],
    facade_kubeconfig: Path,
    model: RegisteredModel,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[None]:
    """The predictor Deployment, the operator and the chart's ModelAlias Ready on `production`."""
    ns = kube_namespace
    await o.create(admin, ns, "deployments", o.deployment("predictor"))
    start_operator(model.tracking_uri)
    await o.create(
        admin, ns, "modelaliases", o.model_alias(MODELALIAS, model.name, "production", poll_seconds=5)
    )
    await o.wait_status(
        admin, ns, MODELALIAS, lambda s: s.get("phase") == "Ready", timeout=WAIT, what="Ready"
    )
    monkeypatch.setenv("KUBECONFIG", str(facade_kubeconfig))
    yield


async def test_reload_moves_the_modelalias_and_answers_with_the_version_rolled_out(
    served: None, admin: KubeApi, kube_namespace: str, model: RegisteredModel, tmp_path: Path
) -> None:
    async with facade(tmp_path, kube_namespace, model.name) as client:
        response = await client.post("/reload", params={"alias": "20250327"})

    wanted = model.version_of("backtest_20250327")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "reloaded",
        "model_alias": "backtest_20250327",
        "model_version": wanted,
    }
    ma = await o.get(admin, kube_namespace, "modelaliases", MODELALIAS)
    assert (ma["spec"]["alias"], ma["status"]["resolvedVersion"]) == ("backtest_20250327", wanted)
    dep = await o.get(admin, kube_namespace, "deployments", "predictor")
    assert pod_version({"spec": dep["spec"]["template"]["spec"]}) == wanted


async def test_a_second_reload_to_another_alias_is_409_while_the_first_rolls_out_and_the_first_completes(
    served: None,
    admin: KubeApi,
    kube_namespace: str,
    node_simulator: NodeSimulator,
    model: RegisteredModel,
    tmp_path: Path,
) -> None:
    ns, slow = kube_namespace, model.version_of("backtest_20250403")
    node_simulator.behaviour = lambda pod: "never-ready" if pod_version(pod) == slow else "ready"
    async with facade(tmp_path, ns, model.name) as client:
        first = asyncio.create_task(client.post("/reload", params={"alias": "20250403"}))
        await o.wait_status(admin, ns, MODELALIAS, lambda s: s.get("targetVersion") == slow, timeout=WAIT)

        second = await client.post("/reload", params={"alias": "20250327"})
        assert not first.done()  # answered while the first still waits: it did not queue behind it
        assert second.status_code == 409, second.text
        assert "backtest_20250403" in second.json()["detail"]

        node_simulator.behaviour = always_ready  # the slow pods come up (replaced, as after a restart)
        for pod in await admin.list_pods(ns, {"app": "predictor"}):
            if pod_version(pod) == slow:
                await admin.request("DELETE", o.path(ns, "pods", pod["metadata"]["name"]))
        answered = await first

    assert answered.status_code == 200, answered.text
    assert answered.json()["model_version"] == slow


async def test_another_facade_replica_gets_409_while_a_rollout_of_another_alias_runs(
    served: None,
    admin: KubeApi,
    kube_namespace: str,
    node_simulator: NodeSimulator,
    model: RegisteredModel,
    tmp_path: Path,
) -> None:
    ns, slow = kube_namespace, model.version_of("backtest_20250403")
    node_simulator.behaviour = lambda pod: "never-ready" if pod_version(pod) == slow else "ready"
    async with facade(tmp_path / "a", ns, model.name) as one, facade(tmp_path / "b", ns, model.name) as other:
        first = asyncio.create_task(one.post("/reload", params={"alias": "20250403"}))
        await o.wait_status(admin, ns, MODELALIAS, lambda s: s.get("phase") == "RollingOut", timeout=WAIT)
        second = await other.post("/reload", params={"alias": "20250327"})
        first.cancel()

    assert second.status_code == 409, second.text
    assert "RollingOut" in second.json()["detail"]
    ma = await o.get(admin, ns, "modelaliases", MODELALIAS)
    assert ma["spec"]["alias"] == "backtest_20250403"  # the change under way stands


async def test_the_facade_may_not_move_a_modelalias_its_role_does_not_name(
    served: None, admin: KubeApi, kube_namespace: str, model: RegisteredModel, tmp_path: Path
) -> None:
    await o.create(
        admin,
        kube_namespace,
        "modelaliases",
        o.model_alias("other", model.name, "production", poll_seconds=5),
    )
    async with facade(tmp_path, kube_namespace, model.name, modelalias="other") as client:
        response = await client.post("/reload", params={"alias": "20250327"})

    assert response.status_code == 503, response.text
    assert "403" in response.json()["detail"]
    assert (await o.get(admin, kube_namespace, "modelaliases", "other"))["spec"]["alias"] == "production"
