"""The real operator when MLflow misbehaves: an alias that does not exist, a server that is down."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from btcf_operator.kube import KubeApi

from btcforecast import registry
from btcforecast.devservers.process import ManagedProcess
from tests.fixtures.registry import RegisteredModel
from tests.operator import objects as o

pytestmark = pytest.mark.timeout(300)


async def test_a_missing_alias_fails_with_alias_not_found_then_recovers_when_it_appears(
    kube: KubeApi, namespace: str, start_operator, register_models: Callable[..., RegisteredModel]
) -> None:
    model = register_models()
    await o.create(kube, namespace, "deployments", o.deployment("predictor"))
    start_operator(model.tracking_uri)
    await o.create(kube, namespace, "modelaliases", o.model_alias("ma", model.name, "champion"))

    status = await o.wait_status(kube, namespace, "ma", lambda s: s.get("phase") == "Failed", what="Failed")
    assert o.condition(status, "Resolved")["reason"] == "AliasNotFound"

    wanted = model.version_of("backtest_20250327")
    registry.set_alias(registry.connect(model.tracking_uri), model.name, "champion", wanted)
    await o.wait_pinned(kube, namespace, "deployments", "predictor", wanted)
    await o.roll_deployment(kube, namespace, "predictor")
    status = await o.wait_status(kube, namespace, "ma", lambda s: s.get("phase") == "Ready", what="Ready")
    assert status["resolvedVersion"] == wanted


async def test_mlflow_down_is_reported_and_the_alias_is_followed_once_it_is_back(
    kube: KubeApi,
    namespace: str,
    start_operator,
    mlflow: ManagedProcess,
    register_models: Callable[..., RegisteredModel],
) -> None:
    model = register_models()
    await o.create(kube, namespace, "deployments", o.deployment("predictor"))
    start_operator(model.tracking_uri)
    mlflow.stop()
    try:
        await o.create(kube, namespace, "modelaliases", o.model_alias("ma", model.name, "production"))
        status = await o.wait_status(
            kube, namespace, "ma", lambda s: "MLflow unreachable" in s.get("message", ""), what="MLflow down"
        )
        assert o.condition(status, "Resolved")["reason"] == "RegistryUnavailable"
    finally:
        mlflow.start()

    await o.wait_status(kube, namespace, "ma", lambda s: s.get("phase") == "RollingOut", what="rollout")
    await o.roll_deployment(kube, namespace, "predictor")
    status = await o.wait_status(kube, namespace, "ma", lambda s: s.get("phase") == "Ready", what="Ready")
    assert status["resolvedVersion"] == model.version_of("production")
