"""The release the container tests run: the chart rendered offline (helm-python-sdk) once per session.

Defaults, except that the seed reads a CSV from its ConfigMap key (the test mounts the real file over
that key: the chart's inline ConfigMap path, without pushing 1.2 MB through the renderer) and never
goes online.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml

from tests.chart.chart_helpers import CHART, NAMESPACE, RELEASE
from tests.containers.chartpod import Chart

VALUES: dict[str, Any] = {
    "seed": {
        "data": {
            "csv": "datetime,open,high,low,close,volume\n(the test mounts the real CSV here)",
            "online": False,
        }
    },
}


@cache
def rendered_chart() -> Chart:
    import helm_python as helm

    with helm.Chart.load(CHART) as chart:
        files = chart.render(values=VALUES, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(files.items()):
        if not path.endswith("NOTES.txt"):
            docs.extend(d for d in yaml.safe_load_all(text) if d)
    return Chart(tuple(docs), NAMESPACE)
