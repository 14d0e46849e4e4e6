"""The facade's /reload in cluster mode, in process, against the Kubernetes API emulator.

The facade (RELOAD_MODE=cluster) moves the ModelAlias and answers with what the real operator
rolled out; the test plays the Deployment controller. Where only the facade's side of the
exchange matters (a failed rollout, no answer, no ModelAlias, no API server), the test plays the
operator too by writing the status itself. The facade's one outbound HTTP client fails the test
if it is ever used: in cluster mode /reload never calls the predictor.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from btcf_operator.kube import KubeApi

from btcforecast.devservers.process import free_port
from tests.facade.inprocess import offline_facade, offline_settings
from tests.fixtures.registry import RegisteredModel
from tests.operator import objects as o
from tests.operator.kube_emulator import write_kubeconfig

pytestmark = pytest.mark.timeout(300)

MODELALIAS = "btc-lstm-production"


def cluster_facade(
    tmp_path: Path, namespace: str, model: str = "btc-lstm", *, timeout: float = 60.0
) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """The facade app with RELOAD_MODE=cluster; credentials come from KUBECONFIG (the emulator)."""
    settings = offline_settings(
        tmp_path,
        model_name=model,
        reload_mode="cluster",
        modelalias_name=MODELALIAS,
        modelalias_namespace=namespace,
        cluster_reload_timeout=timeout,
    )
    return offline_facade(settings, timeout=timeout + 30)


@pytest.fixture
async def operated_facade(
    kube: KubeApi, namespace: str, start_operator, registered: RegisteredModel, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The cluster-mode facade over a predictor Deployment, the real operator and a ModelAlias Ready
    on `production` of the session's `btc-lstm` (whose MLflow aliases no test moves)."""
    await o.create(kube, namespace, "deployments", o.deployment("predictor"))
    start_operator(registered.tracking_uri)
    ma = o.model_alias(MODELALIAS, registered.name, "production")
    await o.create(kube, namespace, "modelaliases", ma)
    controller = asyncio.create_task(o.deployment_controller(kube, namespace))
    try:
        await o.wait_status(kube, namespace, MODELALIAS, lambda s: s.get("phase") == "Ready", what="Ready")
        async with cluster_facade(tmp_path, namespace, registered.name) as facade:
            yield facade
    finally:
        controller.cancel()


async def _answer_as_operator(kube: KubeApi, namespace: str, first: int, status: dict[str, Any]) -> None:
    """Wait for the facade's spec change (a generation after ``first``), then write ``status`` for it."""
    moved = await o.wait_for(
        lambda: o.get(kube, namespace, "modelaliases", MODELALIAS),
        lambda ma: ma["metadata"]["generation"] > first,
        what="the facade's patch",
    )
    status = {**status, "observedGeneration": moved["metadata"]["generation"]}
    await o.patch_status(kube, namespace, "modelaliases", MODELALIAS, status)


async def test_reload_answers_with_the_version_the_operator_rolled_out(
    operated_facade: httpx.AsyncClient, kube: KubeApi, namespace: str, registered: RegisteredModel
) -> None:
    response = await operated_facade.post("/reload", params={"alias": "20250327"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "reloaded",
        "model_alias": "backtest_20250327",
        "model_version": registered.version_of("backtest_20250327"),
    }
    dep = await o.get(kube, namespace, "deployments", "predictor")
    [container] = dep["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODEL_VERSION"] == registered.version_of("backtest_20250327")


async def test_an_unknown_alias_is_404_naming_it_and_the_modelalias_keeps_its_alias(
    operated_facade: httpx.AsyncClient, kube: KubeApi, namespace: str
) -> None:
    response = await operated_facade.post("/reload", params={"alias": "20990101"})
    assert response.status_code == 404, response.text
    assert "backtest_20990101" in response.json()["detail"]
    ma = await o.get(kube, namespace, "modelaliases", MODELALIAS)
    assert ma["spec"]["alias"] == "production"


async def test_a_failed_rollout_is_502_with_the_operators_reason(
    kube: KubeApi, namespace: str, tmp_path: Path
) -> None:
    created = await o.create(
        kube, namespace, "modelaliases", o.model_alias(MODELALIAS, "btc-lstm", "production")
    )
    failed = {
        "phase": "Failed",
        "message": "version 3 was not ready in time; rolled back to 2",
        "conditions": [
            {"type": "Resolved", "status": "True", "reason": "AliasResolved"},
            {"type": "RolledOut", "status": "False", "reason": "DeadlineExceeded"},
        ],
    }
    async with cluster_facade(tmp_path, namespace) as facade:
        generation = created["metadata"]["generation"]
        operator = asyncio.create_task(_answer_as_operator(kube, namespace, generation, failed))
        response = await facade.post("/reload", params={"alias": "staging"})
        await operator
    assert response.status_code == 502
    assert "DeadlineExceeded" in response.json()["detail"]


async def test_no_answer_from_the_operator_in_time_is_504(
    kube: KubeApi, namespace: str, tmp_path: Path
) -> None:
    await o.create(kube, namespace, "modelaliases", o.model_alias(MODELALIAS, "btc-lstm", "production"))
    async with cluster_facade(tmp_path, namespace, timeout=1.0) as facade:
        response = await facade.post("/reload", params={"alias": "staging"})
    assert response.status_code == 504
    assert "staging" in response.json()["detail"]


async def test_a_missing_modelalias_is_503_naming_it(kube: KubeApi, namespace: str, tmp_path: Path) -> None:
    async with cluster_facade(tmp_path, namespace) as facade:
        response = await facade.post("/reload", params={"alias": "staging"})
    assert response.status_code == 503
    assert f"{namespace}/{MODELALIAS}" in response.json()["detail"]


async def test_an_unreachable_api_server_is_503(
    kube_emulator, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nowhere = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("KUBECONFIG", str(nowhere))
    async with cluster_facade(tmp_path, namespace) as facade:
        response = await facade.post("/reload", params={"alias": "staging"})
    assert response.status_code == 503
    assert "unreachable" in response.json()["detail"]


async def test_without_kubernetes_credentials_the_facade_starts_and_reload_is_503(
    namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    async with cluster_facade(tmp_path, namespace) as facade:
        response = await facade.post("/reload", params={"alias": "staging"})
    assert response.status_code == 503
    assert "no Kubernetes credentials" in response.json()["detail"]


async def test_a_second_reload_to_another_alias_is_409_at_once_while_the_first_waits(
    kube: KubeApi, namespace: str, tmp_path: Path
) -> None:
    await o.create(kube, namespace, "modelaliases", o.model_alias(MODELALIAS, "btc-lstm", "production"))
    async with cluster_facade(tmp_path, namespace, timeout=120.0) as facade:
        first = asyncio.create_task(facade.post("/reload", params={"alias": "staging"}))
        await o.wait_for(
            lambda: o.get(kube, namespace, "modelaliases", MODELALIAS),
            lambda ma: ma["spec"]["alias"] == "staging",
            what="the first reload's patch",
        )
        second = await facade.post("/reload", params={"alias": "20250327"})
        assert not first.done()  # the first still waits for the operator: no one answered it yet
        first.cancel()
    assert second.status_code == 409, second.text
    assert "'staging'" in second.json()["detail"]
    ma = await o.get(kube, namespace, "modelaliases", MODELALIAS)
    assert ma["spec"]["alias"] == "staging"  # the first change stands


async def test_a_reload_while_the_operator_rolls_out_another_alias_is_409_naming_it(
    kube: KubeApi, namespace: str, tmp_path: Path
) -> None:
    """What another facade replica sees: the status says a rollout of another alias is under way."""
    created = await o.create(
        kube, namespace, "modelaliases", o.model_alias(MODELALIAS, "btc-lstm", "staging")
    )
    rolling = {
        "phase": "RollingOut",
        "observedGeneration": created["metadata"]["generation"],
        "targetVersion": "4",
        "message": "rolling out version 4 (from 3)",
    }
    await o.patch_status(kube, namespace, "modelaliases", MODELALIAS, rolling)
    async with cluster_facade(tmp_path, namespace) as facade:
        response = await facade.post("/reload", params={"alias": "production"})
    assert response.status_code == 409, response.text
    assert "'staging'" in response.json()["detail"] and "RollingOut" in response.json()["detail"]
    ma = await o.get(kube, namespace, "modelaliases", MODELALIAS)
    assert ma["metadata"]["generation"] == created["metadata"]["generation"]  # nothing patched
