"""The ModelAlias CRD the chart installs (its `crds/`), as kubectl users meet it on a real API server.

One release of the chart with default values serves every test here: the CRD is Established,
`kubectl get ma` prints its columns, and a ModelAlias that breaks the schema is refused with the
schema's own message (kubectl's client-side check off, so the message is the server's).
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.k8s import helm

pytestmark = pytest.mark.kube

CRD = "modelaliases.serving.btcforecast.io"
MODELALIAS = "btc-lstm-production"


@pytest.fixture(scope="module")
def release(kube_cluster: Any, kube_api: client.ApiClient) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(namespace, objects) of the chart installed with its default values."""
    with (
        helm.scratch_namespace(kube_api, "modelalias") as namespace,
        helm.installed(kube_cluster.admin_kubeconfig, namespace, {}) as docs,
    ):
        yield namespace, docs


def test_the_crd_is_established(kube_cluster: Any, release: tuple[str, list[dict[str, Any]]]) -> None:
    jsonpath = "jsonpath={.status.conditions[?(@.type=='Established')].status}"
    assert helm.kubectl_run(kube_cluster.admin_kubeconfig, "get", "crd", CRD, "-o", jsonpath) == "True"


def test_kubectl_get_ma_prints_the_printer_columns(
    kube_cluster: Any, release: tuple[str, list[dict[str, Any]]]
) -> None:
    namespace, _ = release
    header, row = helm.kubectl_run(kube_cluster.admin_kubeconfig, "get", "ma", "-n", namespace).splitlines()
    assert header.split() == ["NAME", "ALIAS", "VERSION", "PHASE", "AGE"]
    assert row.split()[:2] == [MODELALIAS, "production"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"strategy": "BlueGreen"},
            'spec.strategy: Unsupported value: "BlueGreen": supported values: "Rollout", "HotReload"',
        ),
        (
            {"pollSeconds": 1},
            "spec.pollSeconds: Invalid value: 1: spec.pollSeconds in body should be greater than or equal"
            " to 5",
        ),
        (
            {"target": {"kind": "StatefulSet", "name": "x"}},
            'spec.target.kind: Unsupported value: "StatefulSet"',
        ),
        ({"alias": None}, "spec.alias: Required value"),
    ],
    ids=["strategy", "poll-seconds", "target-kind", "no-alias"],
)
def test_a_modelalias_that_breaks_the_schema_is_refused_with_its_message(
    kube_cluster: Any, release: tuple[str, list[dict[str, Any]]], change: dict[str, Any], message: str
) -> None:
    namespace, docs = release
    [ma] = [d for d in docs if d["kind"] == "ModelAlias"]
    broken = copy.deepcopy(ma)
    broken["metadata"] = {"name": "broken", "namespace": namespace}
    broken["spec"] = {k: v for k, v in {**broken["spec"], **change}.items() if v is not None}
    with pytest.raises(subprocess.CalledProcessError) as refused:
        helm.kubectl_run(
            kube_cluster.admin_kubeconfig, "apply", "--validate=false", "-f", "-", input=json.dumps(broken)
        )
    assert message in refused.value.stderr
