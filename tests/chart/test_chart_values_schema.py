"""values.schema.json refuses values that would render a broken release."""

from __future__ import annotations

import pytest
from chart_helpers import CHART, helm

BAD_VALUES = {
    "negative-replicas": {"predictor": {"replicas": -1}},
    "unknown-strategy": {"modelAlias": {"strategy": "BlueGreen"}},
    "empty-image-tag": {"facade": {"image": {"tag": ""}}},
    "missing-image-tag": {"predictor": {"image": {"tag": None}}},
    "unknown-object-store-mode": {"objectStore": {"mode": "ftp"}},
    "poll-seconds-zero": {"modelAlias": {"pollSeconds": 0}},
    "bad-pull-policy": {"global": {"imagePullPolicy": "Sometimes"}},
    "misspelt-top-level-key": {"predicter": {"replicas": 2}},
    "string-replicas": {"facade": {"replicas": "two"}},
}


@pytest.mark.parametrize("name", list(BAD_VALUES))
def test_schema_rejects_bad_values(name: str) -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError):
        chart.render(values=BAD_VALUES[name], name="btc-forecast", namespace="btc-forecast")


def test_schema_accepts_the_defaults() -> None:
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(chart.values)
