"""The chart's replicated value set (a shared PostgreSQL URL, two facades and two receivers, the
facade's and the predictor's autoscalers) installed on a real API server.

On the project's v1.20.2 control plane neither autoscaling/v2 (1.23) nor policy/v1 (1.21) is served,
so the chart, asking `.Capabilities`, must render autoscaling/v2beta2 and policy/v1beta1; on a newer
cluster (BTCF_TEST_KUBECONFIG) the GA versions. What is checked is what the server serves and stores.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.k8s import helm
from tests.k8s.test_chart_install import dig, leaves

pytestmark = pytest.mark.kube

DATABASE_URL = "postgresql://btcf:btcf-test-password@db.example:5432/btcf"
VALUES: dict[str, Any] = {
    "postgresql": {"external": {"url": DATABASE_URL}},
    "facade": {
        "replicas": 2,
        "autoscaling": {
            "enabled": True,
            "minReplicas": 2,
            "maxReplicas": 5,
            "targetCPUUtilizationPercentage": 70,
        },
    },
    "callback": {"replicas": 2},
    "predictor": {
        "replicas": 2,
        "autoscaling": {
            "enabled": True,
            "minReplicas": 3,
            "maxReplicas": 6,
            "targetCPUUtilizationPercentage": 60,
        },
    },
}


@pytest.fixture(scope="module")
def served(kube_cluster: Any) -> set[str]:
    return set(helm.kubectl_run(kube_cluster.admin_kubeconfig, "api-versions").split())


@pytest.fixture(scope="module")
def release(kube_cluster: Any, kube_api: client.ApiClient) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with (
        helm.scratch_namespace(kube_api, "replicated") as namespace,
        helm.installed(kube_cluster.admin_kubeconfig, namespace, VALUES) as docs,
    ):
        yield namespace, docs


def stored(kube_cluster: Any, namespace: str, docs: list[dict[str, Any]], kind: str) -> dict[str, dict]:
    """The release's objects of `kind`, read back from the server at their rendered API version."""
    mine = [d for d in docs if d["kind"] == kind]
    return {d["metadata"]["name"]: d for d in helm.live(kube_cluster.admin_kubeconfig, namespace, mine)}


def test_autoscalers_use_the_newest_version_the_server_serves(
    kube_cluster: Any, served: set[str], release
) -> None:
    namespace, docs = release
    expected = "autoscaling/v2" if "autoscaling/v2" in served else "autoscaling/v2beta2"
    assert expected in served
    live = stored(kube_cluster, namespace, docs, "HorizontalPodAutoscaler")
    assert set(live) == {f"{helm.RELEASE}-facade", f"{helm.RELEASE}-predictor"}
    for hpa in live.values():
        assert hpa["apiVersion"] == expected


def test_autoscalers_are_stored_with_the_values_bounds_and_target(kube_cluster: Any, release) -> None:
    namespace, docs = release
    live = stored(kube_cluster, namespace, docs, "HorizontalPodAutoscaler")
    for component in ("facade", "predictor"):
        scaling = VALUES[component]["autoscaling"]
        spec = live[f"{helm.RELEASE}-{component}"]["spec"]
        assert spec["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": f"{helm.RELEASE}-{component}",
        }
        assert (spec["minReplicas"], spec["maxReplicas"]) == (scaling["minReplicas"], scaling["maxReplicas"])
        assert spec["metrics"] == [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {
                        "type": "Utilization",
                        "averageUtilization": scaling["targetCPUUtilizationPercentage"],
                    },
                },
            }
        ]


def test_disruption_budgets_use_the_newest_version_the_server_serves(
    kube_cluster: Any, served: set[str], release
) -> None:
    namespace, docs = release
    expected = "policy/v1" if "policy/v1" in served else "policy/v1beta1"
    live = stored(kube_cluster, namespace, docs, "PodDisruptionBudget")
    assert set(live) == {f"{helm.RELEASE}-facade", f"{helm.RELEASE}-predictor"}
    for budget in live.values():
        assert budget["apiVersion"] == expected


def test_disruption_budgets_take_one_pod_of_their_component_at_a_time(kube_cluster: Any, release) -> None:
    namespace, docs = release
    live = stored(kube_cluster, namespace, docs, "PodDisruptionBudget")
    deployments = stored(kube_cluster, namespace, docs, "Deployment")
    for component in ("facade", "predictor"):
        name = f"{helm.RELEASE}-{component}"
        spec = live[name]["spec"]
        assert spec["maxUnavailable"] == 1
        assert spec["selector"] == deployments[name]["spec"]["selector"]


def test_deployments_under_an_autoscaler_leave_replicas_to_it(kube_cluster: Any, release) -> None:
    """The rendered Deployments carry no replicas (the server then defaults 1 until the autoscaler
    acts), so `helm upgrade` never undoes what the autoscaler chose; the receiver has no autoscaler."""
    namespace, docs = release
    rendered = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    deployments = stored(kube_cluster, namespace, docs, "Deployment")
    for component in ("facade", "predictor"):
        assert "replicas" not in rendered[f"{helm.RELEASE}-{component}"]["spec"]
    assert deployments[f"{helm.RELEASE}-callback"]["spec"]["replicas"] == 2


def test_the_database_url_is_stored_in_a_secret_every_store_mounts(kube_cluster: Any, release) -> None:
    namespace, docs = release
    secret = stored(kube_cluster, namespace, docs, "Secret")[f"{helm.RELEASE}-database"]
    assert base64.b64decode(secret["data"]["DATABASE_URL"]).decode() == DATABASE_URL
    deployments = stored(kube_cluster, namespace, docs, "Deployment")
    for component in ("facade", "callback", "mlflow"):
        pod = deployments[f"{helm.RELEASE}-{component}"]["spec"]["template"]["spec"]
        names = {
            source["secret"]["name"]
            for volume in pod["volumes"]
            if "projected" in volume
            for source in volume["projected"]["sources"]
            if "secret" in source
        }
        assert f"{helm.RELEASE}-database" in names, component


BUNDLED: dict[str, Any] = {
    "postgresql": {"bundled": {"enabled": True}},
    "facade": {"replicas": 2},
    "callback": {"replicas": 2},
}


def test_the_bundled_database_is_stored_as_rendered_and_keeps_its_password(
    kube_cluster: Any, kube_api: client.ApiClient
) -> None:
    """StatefulSet, headless Service, NetworkPolicy and Secret accepted as rendered (nothing pruned);
    `helm upgrade` keeps the generated password, and so do `helm uninstall` and a new install under
    the same name (the Secret is kept with the claim, whose cluster knows only that password)."""
    core = client.CoreV1Api(kube_api)
    kubeconfig = kube_cluster.admin_kubeconfig
    name = f"{helm.RELEASE}-postgresql"
    with helm.scratch_namespace(kube_api, "bundled-db") as namespace:
        with helm.installed(kubeconfig, namespace, BUNDLED) as docs:
            mine = [d for d in docs if d["metadata"]["name"] == name]
            assert {d["kind"] for d in mine} == {"StatefulSet", "Service", "NetworkPolicy"}
            live = {d["kind"]: d for d in helm.live(kubeconfig, namespace, mine)}
            for doc in mine:
                for path, value in leaves(doc["spec"]):
                    assert dig(live[doc["kind"]]["spec"], path) == value, f"{doc['kind']}: {path}"
            before = core.read_namespaced_secret(f"{helm.RELEASE}-database", namespace).data
            assert set(before) == {"POSTGRES_PASSWORD", "DATABASE_URL", "MLFLOW_BACKEND_STORE_URI"}

            upgraded = helm.upgrade(
                kubeconfig, helm.RELEASE, namespace, {**BUNDLED, "callback": {"replicas": 3}}
            )

            assert upgraded["status"] == "deployed"
            assert core.read_namespaced_secret(f"{helm.RELEASE}-database", namespace).data == before
            helm.uninstall(kubeconfig, helm.RELEASE, namespace)

        assert core.read_namespaced_secret(f"{helm.RELEASE}-database", namespace).data == before
        with helm.installed(kubeconfig, namespace, BUNDLED):
            assert core.read_namespaced_secret(f"{helm.RELEASE}-database", namespace).data == before
