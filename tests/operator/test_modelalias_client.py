"""btcforecast.modelalias.set_alias_and_wait: patch the ModelAlias, wait for the operator's answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from btcf_operator.kube import KubeApi

from btcforecast.devservers.process import free_port
from btcforecast.kube import KubeUnavailable, api_client
from btcforecast.modelalias import (
    ModelAliasApi,
    ModelAliasMissing,
    ReloadFailed,
    ReloadTimeout,
    set_alias_and_wait,
)
from tests.fixtures.registry import RegisteredModel
from tests.operator import objects as o
from tests.operator.kube_emulator import write_kubeconfig

pytestmark = pytest.mark.timeout(300)


async def test_set_alias_and_wait_answers_with_the_version_rolled_out_or_the_failure_reason(
    kube: KubeApi, namespace: str, start_operator, registered: RegisteredModel
) -> None:
    model = registered  # only the ModelAlias moves: the registry's aliases stay as they are
    await o.create(kube, namespace, "deployments", o.deployment("predictor"))
    start_operator(model.tracking_uri)
    await o.create(kube, namespace, "modelaliases", o.model_alias("ma", model.name, "production"))
    controller = asyncio.create_task(o.deployment_controller(kube, namespace))
    try:
        answer = await set_alias_and_wait(
            kube, namespace, "ma", "backtest_20250327", timeout=60, interval=0.2
        )
        assert answer == {
            "status": "reloaded",
            "model_alias": "backtest_20250327",
            "model_version": model.version_of("backtest_20250327"),
        }
        with pytest.raises(ReloadFailed) as failed:
            await set_alias_and_wait(kube, namespace, "ma", "nope", timeout=60, interval=0.2)
        assert failed.value.reason == "AliasNotFound"
        put_back = await o.get(kube, namespace, "modelaliases", "ma")
        assert put_back["spec"]["alias"] == "backtest_20250327"
    finally:
        controller.cancel()


async def test_a_missing_modelalias_is_model_alias_missing(kube: KubeApi, namespace: str) -> None:
    with pytest.raises(ModelAliasMissing, match=f"{namespace}/absent"):
        await set_alias_and_wait(kube, namespace, "absent", "production", timeout=5, interval=0.1)


async def test_no_answer_from_the_operator_in_time_is_a_reload_timeout(kube: KubeApi, namespace: str) -> None:
    await o.create(kube, namespace, "modelaliases", o.model_alias("ma", "btc-lstm", "production"))
    with pytest.raises(ReloadTimeout, match="not rolled out to 'staging'"):
        await set_alias_and_wait(kube, namespace, "ma", "staging", timeout=0.5, interval=0.1)


async def test_a_failed_status_of_an_older_generation_is_not_the_answer(
    kube: KubeApi, namespace: str
) -> None:
    created = await o.create(kube, namespace, "modelaliases", o.model_alias("ma", "btc-lstm", "x"))
    generation = created["metadata"]["generation"]
    await o.patch_status(
        kube,
        namespace,
        "modelaliases",
        "ma",
        {
            "phase": "Failed",
            "observedGeneration": generation,
            "conditions": [{"type": "Resolved", "status": "False", "reason": "AliasNotFound"}],
        },
    )
    with pytest.raises(ReloadTimeout):
        await set_alias_and_wait(kube, namespace, "ma", "staging", timeout=0.5, interval=0.1)


async def test_an_unreachable_api_server_is_kube_unavailable(tmp_path: Path) -> None:
    nowhere = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{free_port()}")
    api = ModelAliasApi(api_client(str(nowhere)), timeout=2.0)
    try:
        with pytest.raises(KubeUnavailable):
            await set_alias_and_wait(api, "default", "ma", "production", timeout=1, interval=0.1)
    finally:
        api.close()
