"""More than one facade or receiver: allowed only with the shared PostgreSQL database, which then
replaces their sqlite volumes; autoscalers and disruption budgets for the facade and the predictor."""

from __future__ import annotations

from typing import Any

import pytest
from chart_helpers import VALUE_SETS, find, pod_spec_of

REPLICATED = VALUE_SETS["replicated"]
DATABASE_URL = {"postgresql": {"external": {"url": "postgresql://btcf:pw@db:5432/btcf"}}}


def database_sources(pod: dict[str, Any]) -> list[dict[str, Any]]:
    [secrets] = [v for v in pod["volumes"] if v["name"] == "secrets"]
    return [
        s["secret"]
        for s in secrets["projected"]["sources"]
        if any(item["path"] in ("DATABASE_URL", "MLFLOW_BACKEND_STORE_URI") for item in s["secret"]["items"])
    ]


@pytest.mark.parametrize(
    "values",
    [
        {"facade": {"replicas": 2}},
        {"facade": {"autoscaling": {"enabled": True}}},
        {"callback": {"replicas": 3}},
    ],
)
def test_more_than_one_replica_without_a_database_is_refused(render, values: dict[str, Any]) -> None:
    with pytest.raises(Exception, match=r"needs postgresql\.external"):
        render(values)


def test_by_default_facade_and_receiver_keep_sqlite_on_their_volumes(render) -> None:
    docs = render({})
    assert {p["metadata"]["name"].rsplit("-", 1)[-1] for p in find(docs, "PersistentVolumeClaim")} >= {
        "facade",
        "callback",
    }
    for component in ("facade", "callback"):
        [dep] = find(docs, "Deployment", component)
        assert database_sources(pod_spec_of(dep)) == []
        assert dep["spec"]["strategy"] == {"type": "Recreate"}


def test_with_a_database_every_store_reads_its_url_from_the_one_secret(render) -> None:
    docs = render(REPLICATED)
    for component, path in (
        ("facade", "DATABASE_URL"),
        ("callback", "DATABASE_URL"),
        ("mlflow", "MLFLOW_BACKEND_STORE_URI"),
    ):
        [dep] = find(docs, "Deployment", component)
        assert database_sources(pod_spec_of(dep)) == [
            {"name": "btcf-db", "items": [{"key": "DATABASE_URL", "path": path}]}
        ], component
        assert "strategy" not in dep["spec"]
        assert not find(docs, "PersistentVolumeClaim", component)


def test_a_database_url_value_becomes_a_secret_not_an_environment_variable(render) -> None:
    docs = render({**DATABASE_URL, "facade": {"replicas": 2}})
    [secret] = [s for s in find(docs, "Secret") if s["metadata"]["name"].endswith("-database")]
    assert secret["stringData"] == {"DATABASE_URL": "postgresql://btcf:pw@db:5432/btcf"}
    [dep] = find(docs, "Deployment", "facade")
    assert dep["spec"]["replicas"] == 2
    env = [e["name"] for c in pod_spec_of(dep)["containers"] for e in c.get("env", [])]
    assert "DATABASE_URL" not in env


def test_autoscaled_deployments_leave_replicas_to_their_autoscaler(render) -> None:
    docs = render(REPLICATED)
    for component in ("facade", "predictor"):
        [hpa] = find(docs, "HorizontalPodAutoscaler", component)
        [dep] = find(docs, "Deployment", component)
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": dep["metadata"]["name"],
        }
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
        assert "replicas" not in dep["spec"]


def test_no_autoscaler_by_default_nor_for_a_kserve_predictor(render) -> None:
    assert not find(render({}), "HorizontalPodAutoscaler")
    kserve = {**REPLICATED, "predictor": {"autoscaling": {"enabled": True}, "kserve": {"enabled": True}}}
    assert [h["metadata"]["name"] for h in find(render(kserve), "HorizontalPodAutoscaler")] == [
        h["metadata"]["name"] for h in find(render(kserve), "HorizontalPodAutoscaler", "facade")
    ]


def test_replicated_facades_get_a_disruption_budget_of_one(render) -> None:
    docs = render(REPLICATED)
    [pdb] = find(docs, "PodDisruptionBudget", "facade")
    [dep] = find(docs, "Deployment", "facade")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"] == dep["spec"]["selector"]
    assert not find(render({}), "PodDisruptionBudget", "facade")
