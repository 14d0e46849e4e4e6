"""The chart installs on every Kubernetes it declares: 1.20 (tested for real in tests/k8s) to current.

What a real 1.20 API server refused or Helm refused there, checked offline: ports without an explicit
protocol (server-side apply before 1.21 needs it: it is part of the port lists' merge key), the
declared `kubeVersion`, and API versions that only newer servers serve.
"""

from __future__ import annotations

import pytest
import yaml
from chart_helpers import CHART, VALUE_SETS, containers_of, find, kustomized, pod_spec_of

REPLICATED = {"predictor": {"replicas": 2}}


def ports_of(doc: dict) -> list[tuple[str, dict]]:
    """(where, port) for every port the object lists: Service, container and NetworkPolicy ports."""
    name = f"{doc['kind']}/{doc['metadata']['name']}"
    found: list[tuple[str, dict]] = []
    if doc["kind"] == "Service":
        found += [(name, p) for p in doc["spec"]["ports"]]
    if doc["kind"] == "NetworkPolicy":
        for rule in doc["spec"].get("ingress", []) + doc["spec"].get("egress", []):
            found += [(name, p) for p in rule.get("ports", [])]
    if pod_spec_of(doc) is not None:
        for c in containers_of(doc):
            found += [(f"{name}:{c['name']}", p) for p in c.get("ports", [])]
    return found


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_every_port_states_its_protocol(render, name: str) -> None:
    ports = [wp for doc in render(VALUE_SETS[name]) for wp in ports_of(doc)]
    assert ports
    missing = [where for where, port in ports if port.get("protocol") != "TCP"]
    assert not missing, f"ports without protocol: TCP: {missing}"


def test_every_port_of_the_plain_manifests_states_its_protocol() -> None:
    ports = [wp for doc in kustomized() for wp in ports_of(doc)]
    assert ports
    assert not [where for where, port in ports if port.get("protocol") != "TCP"]


def test_chart_declares_kubernetes_1_20_and_later() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == ">=1.20.0-0"


def test_predictor_disruption_budget_uses_policy_v1_where_the_server_has_it(render) -> None:
    """Offline rendering knows every current API group; a 1.20 server (tests/k8s) gets policy/v1beta1."""
    [pdb] = find(render(REPLICATED), "PodDisruptionBudget", "predictor")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["maxUnavailable"] == 1
    [dep] = find(render(REPLICATED), "Deployment", "predictor")
    assert pdb["spec"]["selector"] == dep["spec"]["selector"]


def test_a_single_predictor_gets_no_disruption_budget(render) -> None:
    """A budget on one replica would block every node drain."""
    assert not find(render({}), "PodDisruptionBudget")
    assert not find(
        render({**REPLICATED, "predictor": {"replicas": 2, "kserve": {"enabled": True}}}),
        "PodDisruptionBudget",
    )
