"""The real operator when the quality gate cannot be asked: the facade is down or not configured."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from btcf_operator.kube import KubeApi

from btcforecast.devservers.process import free_port
from tests.fixtures.registry import RegisteredModel
from tests.operator import objects as o

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("facade_url", ["closed-port", ""])
async def test_an_unreachable_or_missing_facade_blocks_the_new_version_with_gate_unavailable(
    kube: KubeApi,
    namespace: str,
    start_operator,
    register_models: Callable[..., RegisteredModel],
    facade_url: str,
) -> None:
    model = register_models()
    served, newer = model.version_of("backtest_20250403"), model.version_of("backtest_20250724")
    await o.create(kube, namespace, "deployments", o.deployment("predictor"))
    controller = asyncio.create_task(o.deployment_controller(kube, namespace))
    try:
        url = f"http://127.0.0.1:{free_port()}" if facade_url == "closed-port" else ""
        start_operator(model.tracking_uri, FACADE_URL=url)
        ma = o.model_alias("ma", model.name, "backtest_20250403", gate={})
        await o.create(kube, namespace, "modelaliases", ma)
        await o.wait_status(kube, namespace, "ma", lambda s: s.get("phase") == "Ready", what="Ready")

        await kube.patch_modelalias_spec(namespace, "ma", {"alias": "backtest_20250724"})
        status = await o.wait_status(
            kube, namespace, "ma", lambda s: s.get("phase") == "Blocked", what="Blocked"
        )
    finally:
        controller.cancel()

    assert o.condition(status, "RolledOut")["reason"] == "GateUnavailable"
    assert o.condition(status, "RolledOut")["status"] == "Unknown"
    assert status["resolvedVersion"] == served
    assert (status["gate"]["candidate"], status["gate"]["decision"]) == (newer, "Unavailable")
    expected = "unreachable" if url else "no FACADE_URL"
    assert expected in status["message"]
    assert o.pinned_version(await o.get(kube, namespace, "deployments", "predictor")) == served
    warnings = [e for e in await o.events(kube, namespace) if e.get("reason") == "GateUnavailable"]
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning"
