"""Cluster mode of the facade's /reload: patch the ModelAlias, wait for the operator's answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from btcf_operator.client import ReloadFailed, set_alias_and_wait
from btcf_operator.kube import KubeApi

from tests.fixtures.registry import RegisteredModel
from tests.operator import objects as o

pytestmark = pytest.mark.timeout(300)


async def _controller(kube: KubeApi, namespace: str) -> None:
    """Plays the Deployment controller: every spec change is rolled out at once."""
    while True:
        dep = await o.get(kube, namespace, "deployments", "predictor")
        if (dep.get("status") or {}).get("observedGeneration") != dep["metadata"]["generation"]:
            await o.roll_deployment(kube, namespace, "predictor")
        await asyncio.sleep(0.2)


async def test_set_alias_and_wait_answers_with_the_version_rolled_out_or_the_failure_reason(
    kube: KubeApi, namespace: str, start_operator, register_models: Callable[..., RegisteredModel]
) -> None:
    model = register_models()
    await o.create(kube, namespace, "deployments", o.deployment("predictor"))
    start_operator(model.tracking_uri)
    await o.create(kube, namespace, "modelaliases", o.model_alias("ma", model.name, "production"))
    controller = asyncio.create_task(_controller(kube, namespace))
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
    finally:
        controller.cancel()
