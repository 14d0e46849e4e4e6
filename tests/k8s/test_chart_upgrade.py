"""`helm upgrade` of the chart on a real API server: new values applied, generated secrets kept,
one-off Jobs run again under the new revision's name (a Job's pod template cannot change)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.k8s import helm

pytestmark = pytest.mark.kube

MA = ("serving.btcforecast.io", "v1alpha1")


def test_upgrade_applies_values_runs_new_jobs_and_keeps_generated_secrets(
    kube_cluster: Any, kube_api: client.ApiClient, kube_namespace: str
) -> None:
    core, batch, custom = (
        client.CoreV1Api(kube_api),
        client.BatchV1Api(kube_api),
        client.CustomObjectsApi(kube_api),
    )
    release = helm.RELEASE
    with helm.installed(kube_cluster.admin_kubeconfig, kube_namespace, {}):
        tokens = core.read_namespaced_secret(f"{release}-secrets", kube_namespace).data
        s3 = core.read_namespaced_secret(f"{release}-s3", kube_namespace).data
        ma = custom.get_namespaced_custom_object(*MA, kube_namespace, "modelaliases", "btc-lstm-production")

        upgraded = helm.upgrade(
            kube_cluster.admin_kubeconfig,
            release,
            kube_namespace,
            {"facade": {"championStart": "2025-04-03"}},
        )

        assert upgraded["revision"] == 2 and upgraded["status"] == "deployed"

        def jobs_of_revision_2_alone() -> set[str] | None:
            names = {j.metadata.name for j in batch.list_namespaced_job(kube_namespace).items}
            return names if names == {f"{release}-seed-2", f"{release}-buckets-2"} else None

        helm.wait_for("the Jobs of revision 2, and no others", jobs_of_revision_2_alone)
        assert core.read_namespaced_secret(f"{release}-secrets", kube_namespace).data == tokens
        assert core.read_namespaced_secret(f"{release}-s3", kube_namespace).data == s3
        facade = client.AppsV1Api(kube_api).read_namespaced_deployment(f"{release}-facade", kube_namespace)
        env = {e.name: e.value for e in facade.spec.template.spec.containers[0].env}
        assert env["CHAMPION_START"] == "2025-04-03"
        after = custom.get_namespaced_custom_object(
            *MA, kube_namespace, "modelaliases", "btc-lstm-production"
        )
        assert after["metadata"]["uid"] == ma["metadata"]["uid"]
