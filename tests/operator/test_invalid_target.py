"""The real operator against the emulator: a target it cannot move ends Failed/InvalidTarget, and recovers.

An InferenceService on KServe's ``predictor.model`` (no containers) gives the operator nothing to pin a
version on. It must say so (``Failed``, reason ``InvalidTarget``, one Warning event), not retry in a
storm, and roll out as soon as the target is fixed, without any change to the ModelAlias.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from btcf_operator.kube import KubeApi

from tests.fixtures.registry import RegisteredModel
from tests.operator import objects as o

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def model(register_models: Callable[..., RegisteredModel]) -> RegisteredModel:
    return register_models()


async def test_an_inference_service_without_containers_fails_invalid_target_then_recovers_when_fixed(
    kube: KubeApi, namespace: str, start_operator, model: RegisteredModel
) -> None:
    await o.create(kube, namespace, "inferenceservices", o.inference_service("btc", custom_predictor=False))
    start_operator(model.tracking_uri)
    ma = o.model_alias("ma", model.name, "production", kind="InferenceService", target="btc")
    await o.create(kube, namespace, "modelaliases", ma)

    status = await o.wait_status(kube, namespace, "ma", lambda s: s.get("phase") == "Failed", what="Failed")
    assert o.condition(status, "RolledOut")["reason"] == "InvalidTarget"
    assert "spec.predictor.model" in status["message"]
    assert "targetVersion" not in status
    isvc = await o.get(kube, namespace, "inferenceservices", "btc")
    assert isvc["metadata"]["generation"] == 1  # never patched

    fixed = o.inference_service("btc")["spec"]
    await kube.request(
        "PATCH",
        o.path(namespace, "inferenceservices", "btc"),
        body=[{"op": "replace", "path": "/spec", "value": fixed}],
        content_type="application/json-patch+json",
    )
    wanted = model.version_of("production")
    await o.wait_pinned(kube, namespace, "inferenceservices", "btc", wanted)
    await o.play_kserve(kube, namespace, "btc")
    status = await o.wait_status(kube, namespace, "ma", lambda s: s.get("phase") == "Ready", what="Ready")
    assert status["resolvedVersion"] == wanted
    warnings = [e for e in await o.events(kube, namespace) if e.get("reason") == "InvalidTarget"]
    assert len(warnings) == 1  # one episode, one event: the retries with backoff post none
