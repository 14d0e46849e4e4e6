"""The InferenceService CRD of the tests (tests/k8s/crds/, KServe 0.21's API for the fields we use)
against the chart's InferenceService, on a real API server.

KServe itself cannot run here; with its CRD the API server validates and stores InferenceServices as
a cluster with KServe does (its webhook aside: what it checks is written as schema where 1.20 can).
The chart's InferenceService is accepted as rendered (tests/k8s/test_chart_install.py, KServe on);
here, broken ones are refused with the schema's message, and the status KServe's controller writes
goes through the status subresource and shows in `kubectl get isvc`.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.k8s import helm

pytestmark = pytest.mark.kube

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"


@pytest.fixture(scope="module", autouse=True)
def our_crd(kube_cluster: Any) -> Iterator[bool]:
    """True: the tests' CRD; False: KServe's own (a cluster with KServe), whose messages differ."""
    with helm.inferenceservice_crd(kube_cluster.admin_kubeconfig) as ours:
        yield ours


def the_charts_inferenceservice(namespace: str) -> dict[str, Any]:
    values = {"predictor": {"kserve": {"enabled": True}}}
    [isvc] = [d for d in helm.render(values, helm.RELEASE, namespace) if d["kind"] == "InferenceService"]
    isvc["metadata"]["namespace"] = namespace
    return isvc


def broken(namespace: str, how: str) -> dict[str, Any]:
    isvc = the_charts_inferenceservice(namespace)
    predictor = isvc["spec"]["predictor"]
    if how == "negative-min-replicas":
        predictor["minReplicas"] = -1
    elif how == "string-max-replicas":
        predictor["maxReplicas"] = "three"
    elif how == "unnamed-container":
        del predictor["containers"][0]["name"]
    elif how == "env-without-name":
        predictor["containers"][0]["env"].append({"value": "x"})
    elif how == "unknown-scale-metric":
        predictor["scaleMetric"] = "gpu"
    elif how == "no-implementation":
        del predictor["containers"]
    elif how == "no-predictor":
        del isvc["spec"]["predictor"]
    elif how == "bad-name":
        isvc["metadata"]["name"] = "1-btc-lstm"
    return isvc


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("negative-min-replicas", "spec.predictor.minReplicas: Invalid value: -1"),
        ("string-max-replicas", 'spec.predictor.maxReplicas: Invalid value: "string"'),
        ("unnamed-container", "spec.predictor.containers.name: Required value"),
        ("env-without-name", "spec.predictor.containers.env.name: Required value"),
        ("unknown-scale-metric", 'spec.predictor.scaleMetric: Unsupported value: "gpu"'),
        ("no-implementation", '"spec.predictor" must validate at least one schema (anyOf)'),
        ("no-predictor", "spec.predictor: Required value"),
        ("bad-name", "metadata.name: Invalid value"),
    ],
)
def test_a_broken_inferenceservice_is_refused_with_the_schemas_message(
    kube_cluster: Any, kube_namespace: str, our_crd: bool, how: str, message: str
) -> None:
    with pytest.raises(subprocess.CalledProcessError) as refused:
        helm.kubectl_run(
            kube_cluster.admin_kubeconfig,
            "create",
            "--validate=false",
            "-f",
            "-",
            input=json.dumps(broken(kube_namespace, how)),
        )
    # Newer API servers name list items in paths (containers[0].name); 1.20 does not.
    stderr = re.sub(r"\[\d+\]", "", refused.value.stderr)
    assert message in stderr or (not our_crd and "denied the request" in stderr)


def test_status_is_a_subresource_shown_in_kserves_columns(
    kube_cluster: Any, kube_api: client.ApiClient, kube_namespace: str
) -> None:
    """What KServe's controller writes (url, Ready, observedGeneration) goes through /status only."""
    custom = client.CustomObjectsApi(kube_api)
    created = custom.create_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, PLURAL, the_charts_inferenceservice(kube_namespace)
    )
    name = created["metadata"]["name"]
    url = f"http://{name}-{kube_namespace}.example.com"
    status = {
        "url": url,
        "observedGeneration": created["metadata"]["generation"],
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        "components": {"predictor": {"url": url, "latestReadyRevision": f"{name}-predictor-00001"}},
    }
    through_the_object = custom.patch_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, PLURAL, name, {"status": status}
    )
    assert "url" not in (through_the_object.get("status") or {})
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, kube_namespace, PLURAL, name, {"status": status}
    )
    header, row = helm.kubectl_run(
        kube_cluster.admin_kubeconfig, "get", "isvc", "-n", kube_namespace
    ).splitlines()
    assert header.split()[:3] == ["NAME", "URL", "READY"]
    assert row.split()[:3] == [name, url, "True"]
