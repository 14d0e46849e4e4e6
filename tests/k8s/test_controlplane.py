"""The test control plane is a real cluster: authentication, RBAC and the controllers all apply."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.fixtures.kube import KubeCluster, wait_until
from tests.operator.objects import deployment

pytestmark = pytest.mark.kube


@pytest.fixture
def service_account(kube_api: client.ApiClient, kube_namespace: str) -> str:
    client.CoreV1Api(kube_api).create_namespaced_service_account(
        kube_namespace, {"metadata": {"name": "worker"}}
    )
    return "worker"


@pytest.fixture
def sa_core(
    kube_cluster: KubeCluster, kube_namespace: str, service_account: str
) -> Iterator[client.CoreV1Api]:
    """CoreV1Api authenticated with nothing but the ServiceAccount's token."""
    path = kube_cluster.kubeconfig_for_serviceaccount(kube_namespace, service_account)
    api = config.new_client_from_config(config_file=str(path))
    try:
        yield client.CoreV1Api(api)
    finally:
        api.close()


def grant_pod_reading(kube_api: client.ApiClient, namespace: str, account: str) -> None:
    rbac = client.RbacAuthorizationV1Api(kube_api)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "pod-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        },
    )


def test_anonymous_requests_are_refused(kube_cluster: KubeCluster) -> None:
    ca = getattr(kube_cluster, "ca_cert", None)
    with httpx.Client(verify=str(ca) if ca else False, trust_env=False, timeout=10) as http:
        response = http.get(f"{kube_cluster.server}/api/v1/namespaces/default/secrets")
    assert response.status_code in (401, 403)


def test_serviceaccount_without_bindings_is_forbidden(sa_core: client.CoreV1Api, kube_namespace: str) -> None:
    with pytest.raises(ApiException) as refused:
        sa_core.list_namespaced_pod(kube_namespace)
    assert refused.value.status == 403


def test_serviceaccount_kubeconfig_works_with_a_granted_role(
    kube_api: client.ApiClient, sa_core: client.CoreV1Api, kube_namespace: str, service_account: str
) -> None:
    grant_pod_reading(kube_api, kube_namespace, service_account)

    pods = wait_until(lambda: sa_core.list_namespaced_pod(kube_namespace), what="pods listable with the role")

    assert pods.items == []


def test_granted_role_allows_nothing_more(
    kube_api: client.ApiClient, sa_core: client.CoreV1Api, kube_namespace: str, service_account: str
) -> None:
    grant_pod_reading(kube_api, kube_namespace, service_account)
    wait_until(lambda: sa_core.list_namespaced_pod(kube_namespace), what="pods listable with the role")

    for forbidden in (
        lambda: sa_core.list_namespaced_secret(kube_namespace),
        lambda: sa_core.list_namespaced_pod("default"),
        lambda: sa_core.delete_collection_namespaced_pod(kube_namespace),
    ):
        with pytest.raises(ApiException) as refused:
            forbidden()
        assert refused.value.status == 403


def test_deployment_gets_a_replicaset_and_pods_from_the_controllers(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    apps, core = client.AppsV1Api(kube_api), client.CoreV1Api(kube_api)
    created = apps.create_namespaced_deployment(kube_namespace, deployment("web", replicas=2))

    replica_set = wait_until(
        lambda: next(
            (
                rs
                for rs in apps.list_namespaced_replica_set(kube_namespace).items
                if any(ref.uid == created.metadata.uid for ref in rs.metadata.owner_references or [])
            ),
            None,
        ),
        what="a ReplicaSet owned by the Deployment",
    )

    def owned_pods() -> list[client.V1Pod] | None:
        pods = core.list_namespaced_pod(kube_namespace).items
        owned = [
            pod
            for pod in pods
            if any(ref.uid == replica_set.metadata.uid for ref in pod.metadata.owner_references or [])
        ]
        return owned if len(owned) == 2 else None

    pods = wait_until(owned_pods, what="two pods owned by the ReplicaSet")

    assert len(pods) == 2
    assert all(pod.status.phase == "Pending" for pod in pods)  # no node here: nothing runs them
