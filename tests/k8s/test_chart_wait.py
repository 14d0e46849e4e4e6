"""`helm install --wait` returns once the seed has run and every workload is ready: no deadlock.

The predictor turns ready only once the seed has set `production` in MLflow. When the seed was a
post-install hook, Helm waited for every workload to be ready *before* it ran the hook: the
predictor never turned ready and `--wait` hung until its timeout. The seed is now an ordinary Job of
the release, so it runs while Helm waits.

On the project's control plane the node is the node simulator (tests/k8s/nodesim.py) taught the two
things this depends on: pods of Jobs run to completion, and the predictor's pods turn Ready only
after the seed Job's pod has completed. The real Deployment, ReplicaSet and Job controllers do the
rest, and Helm's own wait (kstatus: Deployments available, Jobs complete, claims bound) decides when
it is done. On a user's cluster (BTCF_TEST_KUBECONFIG, kind) the pods run for real.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.fixtures.kube import KUBECONFIG_ENV
from tests.k8s import helm
from tests.k8s.nodesim import Behaviour, NodeSimulator, Pod

pytestmark = pytest.mark.kube

CLAIMS = ("minio", "mlflow", "facade", "callback")


def component(pod: Pod) -> str | None:
    return (pod["metadata"].get("labels") or {}).get("app.kubernetes.io/component")


def owned_by_a_job(pod: Pod) -> bool:
    return any(o.get("kind") == "Job" for o in pod["metadata"].get("ownerReferences") or [])


class SeedFirstNode(NodeSimulator):
    """The node simulator, with Job pods that run to completion (Succeeded) and predictor pods that
    turn Ready only once a seed pod has completed, as the real predictor does."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.seeded = threading.Event()
        super().__init__(api, namespace, behaviour=self.decide)

    def decide(self, pod: Pod) -> Behaviour:
        if component(pod) == "predictor" and not self.seeded.is_set():
            return "never-ready"
        return "ready"

    def _reconcile(self, pod: Pod) -> None:
        if not owned_by_a_job(pod) or pod["metadata"].get("deletionTimestamp"):
            super()._reconcile(pod)
            return
        try:
            if not pod["spec"].get("nodeName"):
                self._bind(pod)
            if pod["status"].get("phase") != "Succeeded":
                self.core.patch_namespaced_pod_status(
                    pod["metadata"]["name"], pod["metadata"]["namespace"], {"status": completed(pod)}
                )
        except ApiException as e:
            if e.status not in (404, 409):
                self._record(f"job pod {pod['metadata']['name']}: {e.status} {e.reason}")
            return
        if component(pod) == "seed" and not self.seeded.is_set():
            self.seeded.set()
            self.predictors_turn_ready(pod["metadata"]["namespace"])

    def predictors_turn_ready(self, namespace: str) -> None:
        """What the predictor does once `production` exists: load it and answer ready."""
        with self._lock:
            for sim in self._pods.values():
                if sim.behaviour == "never-ready":
                    sim.behaviour = "ready"
        pods = self.core.list_namespaced_pod(
            namespace, label_selector="app.kubernetes.io/component=predictor", _preload_content=False
        )
        for pod in json.loads(pods.data)["items"]:
            super()._reconcile(pod)


def completed(pod: Pod) -> dict[str, Any]:
    """The status a kubelet reports for a pod whose containers all exited 0."""
    now = "2026-01-01T00:00:00Z"

    def exited(spec: dict[str, Any]) -> dict[str, Any]:
        done = {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}
        return {
            "name": spec["name"],
            "image": spec["image"],
            "imageID": f"simulated://{spec['image']}",
            "ready": False,
            "restartCount": 0,
            "state": {"terminated": done},
        }

    return {
        "phase": "Succeeded",
        "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted"}],
        "initContainerStatuses": [exited(c) for c in pod["spec"].get("initContainers") or []],
        "containerStatuses": [exited(c) for c in pod["spec"]["containers"]],
    }


def on_a_real_node() -> bool:
    """A user's cluster (BTCF_TEST_KUBECONFIG, e.g. kind after scripts/kind-up.sh): its kubelet runs
    the pods for real, from the images kind-up loaded; nothing is simulated there."""
    return bool(os.environ.get(KUBECONFIG_ENV))


@pytest.fixture
def node(kube_api: client.ApiClient, kube_namespace: str) -> Iterator[SeedFirstNode | None]:
    if on_a_real_node():
        yield None
        return
    simulated = SeedFirstNode(kube_api, kube_namespace).start()
    try:
        yield simulated
    finally:
        simulated.stop()


@pytest.fixture
def volumes(kube_api: client.ApiClient, kube_namespace: str) -> Iterator[None]:
    """A PersistentVolume for each of the chart's claims, bound to it in advance (no provisioner
    here; a real cluster provisions its own)."""
    if on_a_real_node():
        yield
        return
    core = client.CoreV1Api(kube_api)
    names = [f"{kube_namespace}-{claim}"[:63] for claim in CLAIMS]
    for name, claim in zip(names, CLAIMS, strict=True):
        core.create_persistent_volume(
            {
                "metadata": {"name": name, "labels": {"btcf.dev/test": "true"}},
                "spec": {
                    "capacity": {"storage": "10Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "hostPath": {"path": f"/nonexistent/{name}"},
                    "claimRef": {"namespace": kube_namespace, "name": f"{helm.RELEASE}-{claim}"},
                },
            }
        )
    try:
        yield
    finally:
        for name in names:
            with contextlib.suppress(ApiException):
                core.delete_persistent_volume(name)


@pytest.mark.timeout(2000)  # a real node trains the seed for real (the simulator takes seconds)
def test_install_wait_returns_once_the_seed_ran_and_every_workload_is_ready(
    kube_cluster: Any,
    kube_api: client.ApiClient,
    kube_namespace: str,
    node: SeedFirstNode | None,
    volumes: None,
) -> None:
    apps, batch = client.AppsV1Api(kube_api), client.BatchV1Api(kube_api)
    # On a real node the seed trains for real: from generated bars, the quickest data there is.
    values = {"seed": {"data": {"online": False}}} if node is None else {}
    timeout = 1800 if node is None else 240
    with helm.installed(
        kube_cluster.admin_kubeconfig, kube_namespace, values, wait="watcher", timeout=timeout
    ):
        status = helm.status(kube_cluster.admin_kubeconfig, helm.RELEASE, kube_namespace)
        assert status["status"] == "deployed"
        assert node is None or node.seeded.is_set()
        seed = batch.read_namespaced_job(f"{helm.RELEASE}-seed-1", kube_namespace)
        assert seed.status.succeeded == 1
        predictor = apps.read_namespaced_deployment(f"{helm.RELEASE}-predictor", kube_namespace)
        assert predictor.status.available_replicas == 1
