"""The chart ships the very CRD that manifests/ holds: one source of truth."""

from __future__ import annotations

from chart_helpers import CHART, MANIFESTS, helm


def test_chart_crd_equals_manifests_crd() -> None:
    source = (MANIFESTS / "crd-modelaliases.yaml").read_text()
    with helm.Chart.load(CHART) as chart:
        crds = {c["name"]: c["data"] for c in chart.crds}
    assert crds == {"crds/crd-modelaliases.yaml": source}


def test_packaged_chart_carries_the_crd_contents(tmp_path) -> None:
    archive = helm.package(CHART, destination=tmp_path)
    with helm.Chart.load(archive) as chart:
        [crd] = chart.crds
    assert crd["data"] == (MANIFESTS / "crd-modelaliases.yaml").read_text()
