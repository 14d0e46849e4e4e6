"""The chart's monitoring objects: ServiceMonitors (behind a value and the API's presence), the Grafana
dashboard ConfigMap, the operator's metrics port and the NetworkPolicies that let scrapes in.

The offline renderer serves no monitoring.coreos.com API, so monitors render only when forced.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from chart_helpers import CHART, VALUE_SETS, containers_of

from callback.metrics import ReceiverMetrics

MONITORS = {"metrics": {"serviceMonitor": {"enabled": True, "force": True}}}
DASHBOARD = {"metrics": {"dashboard": {"enabled": True}}}
ROOT = Path(__file__).resolve().parents[2]


def of_kind(docs, *kinds: str) -> list[dict]:
    return [d for d in docs if d["kind"] in kinds]


def by_name(docs, kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_no_monitor_or_dashboard_is_rendered_by_default(render, name: str) -> None:
    assert of_kind(render(VALUE_SETS[name]), "ServiceMonitor", "PodMonitor") == []
    assert [
        d for d in of_kind(render(VALUE_SETS[name]), "ConfigMap") if "dashboard" in d["metadata"]["name"]
    ] == []


def test_monitors_wait_for_the_prometheus_operators_api_unless_forced(render) -> None:
    assert (
        of_kind(render({"metrics": {"serviceMonitor": {"enabled": True}}}), "ServiceMonitor", "PodMonitor")
        == []
    )


def test_each_service_monitor_selects_one_service_with_the_port_it_scrapes(render) -> None:
    docs = render(MONITORS)
    monitors = of_kind(docs, "ServiceMonitor")
    components = sorted(m["metadata"]["labels"]["app.kubernetes.io/component"] for m in monitors)
    assert components == ["callback", "facade", "operator", "predictor"]
    for monitor in monitors:
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        services = [
            s
            for s in of_kind(docs, "Service")
            if selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
            and endpoint["port"] in {p["name"] for p in s["spec"]["ports"]}
        ]
        assert len(services) == 1, monitor["metadata"]["name"]


def test_a_kserve_predictor_is_scraped_through_a_pod_monitor(render) -> None:
    docs = render({**MONITORS, "predictor": {"kserve": {"enabled": True}}})
    (monitor,) = of_kind(docs, "PodMonitor")
    assert monitor["spec"]["selector"]["matchLabels"] == {"serving.kserve.io/inferenceservice": "btc-lstm"}
    (isvc,) = of_kind(docs, "InferenceService")
    ports = {p["name"] for c in containers_of(isvc) for p in c.get("ports", [])}
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] in ports
    assert "predictor" not in {
        m["metadata"]["labels"]["app.kubernetes.io/component"] for m in of_kind(docs, "ServiceMonitor")
    }


def test_monitor_labels_and_intervals_come_from_values(render) -> None:
    values = {
        "metrics": {
            "serviceMonitor": {
                **MONITORS["metrics"]["serviceMonitor"],
                "interval": "15s",
                "labels": {"release": "kps"},
            }
        }
    }
    for monitor in of_kind(render(values), "ServiceMonitor"):
        assert monitor["metadata"]["labels"]["release"] == "kps"
        assert monitor["spec"]["endpoints"][0]["interval"] == "15s"


def test_the_operator_serves_metrics_on_the_port_its_service_targets(render) -> None:
    docs = render({"operator": {"metricsPort": 9100}})
    operator = by_name(docs, "Deployment", "btc-forecast-operator")
    (container,) = containers_of(operator)
    assert {"name": "metrics", "containerPort": 9100, "protocol": "TCP"} in container["ports"]
    assert {"name": "METRICS_PORT", "value": "9100"} in container["env"]
    service = by_name(docs, "Service", "btc-forecast-operator")
    assert {"name": "metrics", "port": 9100, "targetPort": "metrics", "protocol": "TCP"} in service["spec"][
        "ports"
    ]


def test_the_dashboard_configmap_carries_the_sidecars_label_and_valid_json(render) -> None:
    (configmap,) = [
        d for d in of_kind(render(DASHBOARD), "ConfigMap") if "dashboard" in d["metadata"]["name"]
    ]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(configmap["data"]["btc-forecast.json"])
    assert dashboard["uid"] == "btc-forecast" and dashboard["panels"]


def test_the_dashboard_queries_only_metrics_the_components_define() -> None:
    from btcf_operator import metrics as operator_metrics

    from facade.metrics import FacadeMetrics, QueueStats

    defined = {
        family.name
        for registry in (
            FacadeMetrics(lambda: QueueStats({}, None)).registry,
            operator_metrics.REGISTRY,
            ReceiverMetrics().registry,
        )
        for family in registry.collect()
    }
    predictor_source = (ROOT / "predictor" / "metrics.py").read_text()
    text = (CHART / "dashboards" / "btc-forecast.json").read_text()
    queried = {re.sub(r"_(total|bucket|count|sum)$", "", m) for m in re.findall(r"\bbtcf_[a-z_]+", text)}
    unknown = {m for m in queried if m not in defined and f'"{m}"' not in predictor_source}
    assert queried and not unknown, unknown


def test_scrapers_may_reach_every_components_metrics_port(render) -> None:
    scrapers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "obs"}}}]
    docs = render({"metrics": {"scrapers": scrapers}})
    policies = [p for p in of_kind(docs, "NetworkPolicy") if p["metadata"]["name"].endswith("-metrics")]
    ports = {
        p["metadata"]["labels"]["app.kubernetes.io/component"]: p["spec"]["ingress"][0]["ports"][0]["port"]
        for p in policies
    }
    assert ports == {"facade": "http", "callback": "http", "operator": "metrics", "predictor": "http"}
    assert all(p["spec"]["ingress"][0]["from"] == scrapers for p in policies)


def test_no_scrape_policy_without_scrapers(render) -> None:
    docs = render({"metrics": {"scrapers": []}})
    assert [p for p in of_kind(docs, "NetworkPolicy") if p["metadata"]["name"].endswith("-metrics")] == []
