"""The chart's quality gate: spec.gate on the ModelAlias when enabled, the facade's URL for the operator."""

from __future__ import annotations

from chart_helpers import RELEASE, containers_of, find


def operator_env(docs) -> dict[str, str]:
    [deployment] = find(docs, "Deployment", "operator")
    [container] = list(containers_of(deployment))
    return {e["name"]: e.get("value") for e in container["env"]}


def test_the_default_modelalias_has_no_gate(render) -> None:
    [ma] = find(render({}), "ModelAlias")
    assert "gate" not in ma["spec"]


def test_an_enabled_gate_renders_its_values_into_the_modelalias(render) -> None:
    [ma] = find(
        render({"modelAlias": {"gate": {"enabled": True, "hours": 72, "maxLossRatio": 1.05}}}), "ModelAlias"
    )
    assert ma["spec"]["gate"] == {"hours": 72, "minHours": 24, "maxLossRatio": 1.05, "maxMaeRatio": 1.02}


def test_the_operator_asks_the_releases_facade_service_by_default(render) -> None:
    docs = render({})
    [service] = find(docs, "Service", "facade")
    port = service["spec"]["ports"][0]["port"]
    assert operator_env(docs)["FACADE_URL"] == f"http://{service['metadata']['name']}:{port}"
    assert service["metadata"]["name"] == f"{RELEASE}-facade"
    assert operator_env(docs)["GATE_TIMEOUT"] == "120"


def test_an_explicit_facade_url_wins(render) -> None:
    docs = render({"operator": {"facadeUrl": "http://facade.other:8000"}})
    assert operator_env(docs)["FACADE_URL"] == "http://facade.other:8000"
