"""The node simulator plays the kubelet: the real Deployment controller reacts to the pod status it writes."""

from __future__ import annotations

import ipaddress

import pytest
from kubernetes import client

from tests.fixtures.kube import wait_until
from tests.k8s.nodesim import NodeSimulator
from tests.operator.objects import deployment

pytestmark = pytest.mark.kube


def pods_of(kube_api: client.ApiClient, namespace: str, app: str) -> list[client.V1Pod]:
    return client.CoreV1Api(kube_api).list_namespaced_pod(namespace, label_selector=f"app={app}").items


def deployment_status(kube_api: client.ApiClient, namespace: str, name: str) -> client.V1DeploymentStatus:
    return client.AppsV1Api(kube_api).read_namespaced_deployment_status(name, namespace).status


def condition(status: client.V1DeploymentStatus, kind: str) -> client.V1DeploymentCondition | None:
    return next((c for c in status.conditions or [] if c.type == kind), None)


def test_ready_pods_make_the_deployment_ready(
    kube_api: client.ApiClient, kube_namespace: str, node_simulator: NodeSimulator
) -> None:
    client.AppsV1Api(kube_api).create_namespaced_deployment(kube_namespace, deployment("web", replicas=2))

    status = wait_until(
        lambda: (s := deployment_status(kube_api, kube_namespace, "web")).ready_replicas == 2 and s,
        what="two ready replicas",
    )

    assert status.available_replicas == 2
    assert condition(status, "Available").status == "True"
    pods = pods_of(kube_api, kube_namespace, "web")
    assert {pod.spec.node_name for pod in pods} == {node_simulator.node_name}
    assert all(ipaddress.ip_address(pod.status.pod_ip).is_loopback for pod in pods)
    assert len({pod.status.pod_ip for pod in pods}) == 2


def test_a_never_ready_pod_keeps_the_deployment_unavailable(
    kube_api: client.ApiClient, kube_namespace: str, node_simulator: NodeSimulator
) -> None:
    node_simulator.behaviour = lambda pod: "never-ready"
    client.AppsV1Api(kube_api).create_namespaced_deployment(kube_namespace, deployment("web", replicas=1))

    wait_until(
        lambda: [p for p in pods_of(kube_api, kube_namespace, "web") if p.status.phase == "Running"],
        what="the pod running (but not ready)",
    )
    status = wait_until(
        lambda: (s := deployment_status(kube_api, kube_namespace, "web")).unavailable_replicas == 1 and s,
        what="the Deployment counting the pod as unavailable",
    )

    assert not status.ready_replicas
    assert not status.available_replicas
    assert condition(status, "Available").status == "False"


def test_a_crashlooping_pod_shows_growing_restarts(
    kube_api: client.ApiClient, kube_namespace: str, node_simulator: NodeSimulator
) -> None:
    node_simulator.behaviour = lambda pod: "crashloop"
    client.AppsV1Api(kube_api).create_namespaced_deployment(kube_namespace, deployment("web", replicas=1))

    def restarted_twice() -> client.V1ContainerStatus | None:
        for pod in pods_of(kube_api, kube_namespace, "web"):
            for container in pod.status.container_statuses or []:
                if container.restart_count >= 2:
                    return container
        return None

    container = wait_until(restarted_twice, what="two restarts")

    assert container.state.waiting.reason == "CrashLoopBackOff"
    assert container.last_state.terminated.exit_code != 0
    assert not deployment_status(kube_api, kube_namespace, "web").available_replicas


def test_pods_removed_by_a_scale_down_are_gone(
    kube_api: client.ApiClient, kube_namespace: str, node_simulator: NodeSimulator
) -> None:
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(kube_namespace, deployment("web", replicas=3))
    wait_until(lambda: deployment_status(kube_api, kube_namespace, "web").ready_replicas == 3, what="3 ready")

    apps.patch_namespaced_deployment_scale("web", kube_namespace, {"spec": {"replicas": 1}})

    wait_until(lambda: len(pods_of(kube_api, kube_namespace, "web")) == 1, what="terminated pods removed")
    wait_until(lambda: deployment_status(kube_api, kube_namespace, "web").ready_replicas == 1, what="1 ready")
