"""Builders and waits for the operator tests: the objects a cluster would hold, and polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from btcf_operator.kube import KubeApi

T = TypeVar("T")
WAIT_TIMEOUT = 60.0
FAST_OPERATOR_ENV = {
    "PROGRESS_INTERVAL": "0.3",
    "MIN_POLL_SECONDS": "1",
    "RETRY_INITIAL_SECONDS": "1",
    "RETRY_MAX_SECONDS": "2",
    "HOTRELOAD_RETRIES": "2",
    "HOTRELOAD_RETRY_DELAY": "0.2",
    "HOTRELOAD_TIMEOUT": "30",
    "KUBE_TIMEOUT": "5",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "3",
}
"""Short intervals for a test's operator: rollouts are checked every 0.3 s, retries back off 1..2 s."""


def model_alias(
    name: str,
    model: str,
    alias: str,
    *,
    target: str = "predictor",
    kind: str = "Deployment",
    strategy: str = "Rollout",
    poll_seconds: int = 1,
    deadline: int = 300,
    secret: tuple[str, str] | None = None,
    gate: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "registeredModel": model,
        "alias": alias,
        "target": {"kind": kind, "name": target},
        "strategy": strategy,
        "pollSeconds": poll_seconds,
        "rolloutDeadlineSeconds": deadline,
    }
    if secret is not None:
        spec["reloadTokenSecret"] = {"name": secret[0], "key": secret[1]}
    if gate is not None:
        spec["gate"] = gate
    return {
        "apiVersion": "serving.btcforecast.io/v1alpha1",
        "kind": "ModelAlias",
        "metadata": {"name": name},
        "spec": spec,
    }


def deployment(name: str, replicas: int = 2, labels: dict[str, str] | None = None) -> dict[str, Any]:
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "predictor",
                            "image": "btc-forecast/predictor:0.1.0",
                            "env": [{"name": "MODEL_ALIAS", "value": "production"}],
                        }
                    ]
                },
            },
        },
    }


def inference_service(name: str, *, custom_predictor: bool = True) -> dict[str, Any]:
    """An InferenceService: a custom predictor (``kserve-container``), or KServe's ``predictor.model``."""
    predictor: dict[str, Any]
    if custom_predictor:
        predictor = {
            "containers": [
                {
                    "name": "kserve-container",
                    "image": "btc-forecast/predictor:0.1.0",
                    "env": [{"name": "MODEL_ALIAS", "value": "production"}],
                }
            ]
        }
    else:
        predictor = {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://models/btc-lstm"}}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"predictor": predictor},
    }


async def play_kserve(kube: KubeApi, namespace: str, name: str) -> dict[str, Any]:
    """Play KServe's controller once: this generation reconciled, Ready, with a URL."""
    isvc = await get(kube, namespace, "inferenceservices", name)
    return await patch_status(
        kube,
        namespace,
        "inferenceservices",
        name,
        {
            "observedGeneration": isvc["metadata"]["generation"],
            "url": f"http://{name}.{namespace}.example.com",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}],
        },
    )


def pod(name: str, labels: dict[str, str], port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "containers": [
                {
                    "name": "predictor",
                    "image": "btc-forecast/predictor:0.1.0",
                    "ports": [{"name": "http", "containerPort": port}],
                }
            ]
        },
        "status": {
            "podIP": "127.0.0.1",
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def path(namespace: str, plural: str, name: str | None = None) -> str:
    base = {
        "modelaliases": f"/apis/serving.btcforecast.io/v1alpha1/namespaces/{namespace}/modelaliases",
        "deployments": f"/apis/apps/v1/namespaces/{namespace}/deployments",
        "inferenceservices": f"/apis/serving.kserve.io/v1beta1/namespaces/{namespace}/inferenceservices",
        "pods": f"/api/v1/namespaces/{namespace}/pods",
        "secrets": f"/api/v1/namespaces/{namespace}/secrets",
        "events": f"/api/v1/namespaces/{namespace}/events",
    }[plural]
    return f"{base}/{name}" if name else base


async def create(kube: KubeApi, namespace: str, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
    return await kube.request("POST", path(namespace, plural), body=obj)


async def get(kube: KubeApi, namespace: str, plural: str, name: str) -> dict[str, Any]:
    return await kube.request("GET", path(namespace, plural, name))


async def patch_status(
    kube: KubeApi, namespace: str, plural: str, name: str, status: dict[str, Any]
) -> dict[str, Any]:
    return await kube.request(
        "PATCH",
        path(namespace, plural, name) + "/status",
        body={"status": status},
        content_type="application/merge-patch+json",
    )


async def roll_deployment(
    kube: KubeApi, namespace: str, name: str, *, available: bool = True
) -> dict[str, Any]:
    """Play the Deployment controller once: observe the generation, update (and ready) every replica."""
    dep = await get(kube, namespace, "deployments", name)
    replicas = dep["spec"]["replicas"]
    return await patch_status(
        kube,
        namespace,
        "deployments",
        name,
        {
            "observedGeneration": dep["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas if available else 0,
            "availableReplicas": replicas if available else 0,
        },
    )


def pinned_version(obj: dict[str, Any]) -> str | None:
    """The version the operator pinned on a Deployment (pod template) or InferenceService (object)."""
    meta = obj["spec"]["template"]["metadata"] if obj["kind"] == "Deployment" else obj["metadata"]
    return (meta.get("annotations") or {}).get("serving.btcforecast.io/model-version")


async def wait_pinned(kube: KubeApi, namespace: str, plural: str, name: str, version: str) -> dict[str, Any]:
    """Wait until the operator has patched the target to ``version`` (it writes the status first)."""
    return await wait_for(
        lambda: get(kube, namespace, plural, name),
        lambda obj: pinned_version(obj) == version,
        what=f"{plural}/{name} pinned to version {version}",
    )


async def deployment_controller(kube: KubeApi, namespace: str, name: str = "predictor") -> None:
    """Play the Deployment controller for good (run it as a task): every spec change rolls out at once."""
    while True:
        dep = await get(kube, namespace, "deployments", name)
        if (dep.get("status") or {}).get("observedGeneration") != dep["metadata"]["generation"]:
            await roll_deployment(kube, namespace, name)
        await asyncio.sleep(0.2)


async def events(kube: KubeApi, namespace: str) -> list[dict[str, Any]]:
    return list((await kube.request("GET", path(namespace, "events"))).get("items") or [])


async def wait_for(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool],
    *,
    timeout: float = WAIT_TIMEOUT,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until ``until(value)``; fail naming the last value if it never comes."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {value!r}")
        await asyncio.sleep(0.2)


async def wait_status(
    kube: KubeApi,
    namespace: str,
    name: str,
    until: Callable[[dict[str, Any]], bool],
    *,
    timeout: float = WAIT_TIMEOUT,
    what: str = "status",
) -> dict[str, Any]:
    async def status() -> dict[str, Any]:
        return (await get(kube, namespace, "modelaliases", name)).get("status") or {}

    return await wait_for(status, until, timeout=timeout, what=what)


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})
