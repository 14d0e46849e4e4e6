"""The operator on the real API server with an InferenceService target, the test playing KServe.

KServe itself cannot run here; its CRD (tests/k8s/crds/) makes the API server validate and store
InferenceServices as a KServe cluster does, and the test plays KServe's controller: once it sees a
new generation it reports it reconciled, Ready, with a URL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from btcf_operator.kube import KubeApi

from btcforecast.devservers.process import ManagedProcess
from tests.fixtures.registry import RegisteredModel
from tests.operator import objects as o

pytest_plugins = ["tests.fixtures.kube", "tests.operator.cluster_fixtures"]
pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

WAIT = 180.0
ISVC = "btc-lstm"
KOPF_HANDLED = "kopf.zalando.org/last-handled-configuration"


@pytest.fixture(scope="module")
def model(register_models: Callable[..., RegisteredModel]) -> RegisteredModel:
    return register_models()


async def kserve_controller(admin: KubeApi, namespace: str, name: str) -> None:
    """Play KServe's controller for good (run it as a task): every new generation becomes Ready."""
    while True:
        with contextlib.suppress(Exception):  # not created yet, or a conflict: look again
            isvc = await o.get(admin, namespace, "inferenceservices", name)
            if (isvc.get("status") or {}).get("observedGeneration") != isvc["metadata"]["generation"]:
                await o.play_kserve(admin, namespace, name)
        await asyncio.sleep(0.3)


@pytest.fixture
async def kserve(admin: KubeApi, kube_namespace: str) -> AsyncIterator[None]:
    task = asyncio.create_task(kserve_controller(admin, kube_namespace, ISVC))
    try:
        yield
    finally:
        task.cancel()


def modelalias(model: str, alias: str) -> dict[str, Any]:
    return o.model_alias("ma", model, alias, kind="InferenceService", target=ISVC, poll_seconds=5)


def kserve_container(isvc: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in isvc["spec"]["predictor"]["containers"] if c["name"] == "kserve-container")


async def test_an_inference_service_is_rolled_out_when_kserve_reports_it_ready(
    admin: KubeApi,
    kube_namespace: str,
    start_operator: Callable[..., ManagedProcess],
    model: RegisteredModel,
    kserve: None,
) -> None:
    ns = kube_namespace
    await o.create(admin, ns, "inferenceservices", o.inference_service(ISVC))
    start_operator(model.tracking_uri)
    await o.create(admin, ns, "modelaliases", modelalias(model.name, "production"))

    status = await o.wait_status(admin, ns, "ma", lambda s: s.get("phase") == "Ready", timeout=WAIT)

    wanted = model.version_of("production")
    assert status["resolvedVersion"] == wanted
    isvc = await o.get(admin, ns, "inferenceservices", ISVC)
    assert {"name": "MODEL_VERSION", "value": wanted} in kserve_container(isvc)["env"]
    assert isvc["metadata"]["annotations"]["serving.btcforecast.io/model-version"] == wanted
    assert isvc["status"]["url"].startswith(f"http://{ISVC}.")


async def test_an_inference_service_on_predictor_model_fails_invalid_target_quietly_and_recovers_when_fixed(
    admin: KubeApi,
    kube_namespace: str,
    start_operator: Callable[..., ManagedProcess],
    model: RegisteredModel,
    kserve: None,
) -> None:
    ns = kube_namespace
    await o.create(admin, ns, "inferenceservices", o.inference_service(ISVC, custom_predictor=False))
    start_operator(model.tracking_uri)
    await o.create(admin, ns, "modelaliases", modelalias(model.name, "production"))

    status = await o.wait_status(admin, ns, "ma", lambda s: s.get("phase") == "Failed", timeout=WAIT)
    assert o.condition(status, "RolledOut")["reason"] == "InvalidTarget"
    assert o.condition(status, "Ready")["reason"] == "InvalidTarget"
    assert "spec.predictor.model" in status["message"]
    assert "targetVersion" not in status

    # No retry storm: the operator keeps looking (backoff 1..2 s here) but writes and posts nothing new.
    before = await o.wait_for(  # kopf has recorded the handler's end: it has nothing more to write
        lambda: o.get(admin, ns, "modelaliases", "ma"),
        lambda ma: KOPF_HANDLED in (ma["metadata"].get("annotations") or {}),
        timeout=WAIT,
        what="kopf's last-handled annotation",
    )
    await asyncio.sleep(6)
    after = await o.get(admin, ns, "modelaliases", "ma")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    invalid = [e for e in await o.events(admin, ns) if e.get("reason") == "InvalidTarget"]
    assert [(e["type"], e.get("count", 1)) for e in invalid] == [("Warning", 1)]
    isvc = await o.get(admin, ns, "inferenceservices", ISVC)
    assert "annotations" not in isvc["metadata"] or not isvc["metadata"]["annotations"]

    containers = o.inference_service(ISVC)["spec"]["predictor"]["containers"]
    fix = [
        {"op": "remove", "path": "/spec/predictor/model"},
        {"op": "add", "path": "/spec/predictor/containers", "value": containers},
    ]
    await admin.request(
        "PATCH", o.path(ns, "inferenceservices", ISVC), body=fix, content_type="application/json-patch+json"
    )
    status = await o.wait_status(admin, ns, "ma", lambda s: s.get("phase") == "Ready", timeout=WAIT)
    assert status["resolvedVersion"] == model.version_of("production")
