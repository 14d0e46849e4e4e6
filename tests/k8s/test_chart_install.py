"""`helm install` and `helm uninstall` of the chart on a real API server, for the issue's value sets.

The API server is the project's own v1.20.2 control plane (tests/fixtures/kube.py), or the cluster
of BTCF_TEST_KUBECONFIG (kind). Helm v4 installs through helm-python-sdk, as `helm install` does
(tests/k8s/helm.py). Nothing here needs a pod to run: what is checked is what the API server accepts,
stores and deletes.

For each value set, the tests run in file order on one release: install, look, uninstall.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from tests.k8s import helm

pytestmark = pytest.mark.kube

# The value sets of the issue: defaults, KServe on, an external object store, ingress with TLS.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "kserve-on": {"predictor": {"kserve": {"enabled": True}}},
    "external-object-store": {
        "objectStore": {
            "mode": "external",
            "external": {
                "endpoint": "http://seaweedfs:8333",
                "accessKey": "btcf-test-access",
                "secretKey": "btcf-test-secret-key-0123456789",
                "createBuckets": True,
            },
        },
    },
    "ingress-tls": {
        "ingress": {
            "host": "btc.example.com",
            "tls": [{"secretName": "btcf-tls", "hosts": ["btc.example.com"]}],
        },
        "predictor": {"replicas": 2},
    },
}
CLAIMS = ("mlflow", "facade", "callback")
# What `helm uninstall` keeps, as docs/kubernetes.md says: the PersistentVolumeClaims.
KEPT = {
    "defaults": {*CLAIMS, "minio"},
    "kserve-on": {*CLAIMS, "minio"},
    "external-object-store": set(CLAIMS),
    "ingress-tls": {*CLAIMS, "minio"},
}


@dataclass
class Release:
    name: str
    values: dict[str, Any]
    namespace: str
    docs: list[dict[str, Any]]


def leaves(obj: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(path, value) of every scalar in a JSON-like object."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from leaves(value, (*path, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            yield from leaves(value, (*path, index))
    else:
        yield path, obj


def dig(obj: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        obj = obj[key]
    return obj


@pytest.fixture(scope="module")
def inferenceservice_crd(kube_cluster: Any) -> Iterator[None]:
    """KServe 0.21's InferenceService CRD for our fields (tests/k8s/crds/), unless KServe is installed."""
    with helm.inferenceservice_crd(kube_cluster.admin_kubeconfig):
        yield


@pytest.fixture(scope="module", params=list(VALUE_SETS))
def release(
    request: pytest.FixtureRequest, kube_cluster: Any, kube_api: client.ApiClient, inferenceservice_crd: None
) -> Iterator[Release]:
    values = VALUE_SETS[request.param]
    with (
        helm.scratch_namespace(kube_api, request.param) as namespace,
        helm.installed(kube_cluster.admin_kubeconfig, namespace, values) as docs,
    ):
        yield Release(request.param, values, namespace, docs)


def test_every_object_is_stored_as_rendered(kube_cluster: Any, release: Release) -> None:
    """Accepted, and nothing dropped: every field the chart sets is one the server (or, for the
    InferenceService, KServe's CRD) knows, so nothing was pruned or refused."""
    assert len(release.docs) > 20
    stored = helm.live(kube_cluster.admin_kubeconfig, release.namespace, release.docs)
    by_key = {(d["kind"], d["metadata"]["name"]): d for d in stored}
    assert set(by_key) == {(d["kind"], d["metadata"]["name"]) for d in release.docs}
    for doc in release.docs:
        live = by_key[doc["kind"], doc["metadata"]["name"]]
        for path, value in leaves({k: v for k, v in doc.items() if k != "metadata"}):
            assert dig(live, path) == value, f"{doc['kind']}/{doc['metadata']['name']}: {path}"
    status = helm.status(kube_cluster.admin_kubeconfig, helm.RELEASE, release.namespace)
    assert status["status"] == "deployed"


def test_api_versions_follow_what_the_server_serves(kube_cluster: Any, release: Release) -> None:
    """The predictor's PodDisruptionBudget (more than one replica): policy/v1 where the server has
    it (1.21+), policy/v1beta1 on 1.20."""
    served = set(helm.kubectl_run(kube_cluster.admin_kubeconfig, "api-versions").split())
    budgets = [d for d in release.docs if d["kind"] == "PodDisruptionBudget"]
    replicas = release.values.get("predictor", {}).get("replicas", 1)
    assert len(budgets) == (1 if replicas > 1 else 0)
    for budget in budgets:
        assert budget["apiVersion"] == ("policy/v1" if "policy/v1" in served else "policy/v1beta1")


def test_uninstall_leaves_only_the_volume_claims(kube_cluster: Any, release: Release) -> None:
    """Nothing stuck either: the ModelAlias carries no finalizer (the operator puts none), so it
    goes although Helm deletes it after the operator."""
    helm.uninstall(kube_cluster.admin_kubeconfig, helm.RELEASE, release.namespace)
    kept = {f"persistentvolumeclaim/{helm.RELEASE}-{claim}" for claim in KEPT[release.name]}

    def only_the_claims_left() -> set[str] | None:
        left = helm.left_behind(kube_cluster.admin_kubeconfig, helm.RELEASE, release.namespace)
        return left if left == kept else None

    helm.wait_for("nothing of the release but its volume claims", only_the_claims_left)
    assert not helm.releases(kube_cluster.admin_kubeconfig, release.namespace)
