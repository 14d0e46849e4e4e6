"""The real operator (``kopf run``) against the emulator and a real MLflow: Rollout on a Deployment."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from btcf_operator.kube import KubeApi
from tests.fixtures.registry import RegisteredModel
from tests.operator import objects as o

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def model(register_models: Callable[..., RegisteredModel]) -> RegisteredModel:
    return register_models()


async def test_create_rolls_the_deployment_out_to_the_alias_version_and_reports_ready(
    kube: KubeApi, namespace: str, start_operator, model: RegisteredModel
) -> None:
    await o.create(kube, namespace, "deployments", o.deployment("predictor"))
    await o.roll_deployment(kube, namespace, "predictor")
    start_operator(model.tracking_uri)
    await o.create(kube, namespace, "modelaliases", o.model_alias("ma", model.name, "backtest_20250327"))
    wanted = model.version_of("backtest_20250327")

    await o.wait_status(kube, namespace, "ma", lambda s: s.get("targetVersion") == wanted, what="RollingOut")
    dep = await o.get(kube, namespace, "deployments", "predictor")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "MODEL_VERSION", "value": wanted} in container["env"]
    assert dep["spec"]["template"]["metadata"]["annotations"]["serving.btcforecast.io/model-version"] == wanted

    await o.roll_deployment(kube, namespace, "predictor")
    status = await o.wait_status(kube, namespace, "ma", lambda s: s.get("phase") == "Ready", what="Ready")
    assert status["resolvedVersion"] == wanted
    assert status["observedGeneration"] == 1
    assert {o.condition(status, t)["status"] for t in ("Resolved", "RolledOut", "Ready")} == {"True"}
