"""Every rendered object, and the plain manifests, validate against Kubernetes' own schemas (strict)."""

from __future__ import annotations

import kubernetes_validate.utils as kv
import pytest
import yaml
from chart_helpers import CHART, KUBE_VERSION, VALUE_SETS, helm, kustomized

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
    docs = list(kustomized())
    kinds = {d["kind"] for d in docs}
    assert kinds >= {"CustomResourceDefinition", "ClusterRole", "Deployment", "ServiceAccount"}
    validate_all(docs)
