"""The operator's metrics: outcome labels and the phase gauge as plain functions, and /metrics of the
real operator (``kopf run``) scraped over HTTP while it rolls a Deployment out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from btcf_operator import metrics
from btcf_operator.kube import KubeApi
from btcf_operator.spec import SpecError
from btcf_operator.step import InvalidTarget, RetryLater
from prometheus_client import generate_latest

from btcforecast.devservers.process import free_port
from btcforecast.kube import KubeUnavailable
from tests.fixtures.prometheus import parse, scrape
from tests.fixtures.registry import RegisteredModel
from tests.operator import objects as o

FAMILIES = {
    "btcf_operator_reconciles": "counter",
    "btcf_operator_rollouts_started": "counter",
    "btcf_operator_rollouts_completed": "counter",
    "btcf_operator_rollbacks": "counter",
    "btcf_operator_gate_decisions": "counter",
    "btcf_operator_webhook_deliveries": "counter",
    "btcf_operator_modelalias_phase": "gauge",
}


def phases(namespace: str, name: str) -> dict[str, float]:
    family = parse(generate_latest(metrics.REGISTRY).decode()).families["btcf_operator_modelalias_phase"]
    return {
        s.labels["phase"]: s.value
        for s in family.samples
        if (s.labels["namespace"], s.labels["name"]) == (namespace, name)
    }


@pytest.mark.parametrize(
    ("found", "error", "outcome"),
    [
        (True, None, "ok"),
        (False, None, "gone"),
        (True, RetryLater("MLflow down", 1.0), "retry"),
        (True, InvalidTarget("no container", 1.0), "invalid_target"),
        (True, SpecError("bad spec"), "invalid_spec"),
        (True, KubeUnavailable("connection refused"), "kube_error"),
        (True, ValueError("a bug"), "error"),
    ],
)
def test_a_reconcile_step_is_labelled_by_what_it_found_and_raised(
    found: bool, error: Exception | None, outcome: str
) -> None:
    assert metrics.reconcile_outcome(found, error) == outcome


def test_the_phase_gauge_is_one_for_the_current_phase_and_zero_for_the_others() -> None:
    metrics.record_phase("ns-a", "ma", "RollingOut")
    metrics.record_phase("ns-a", "ma", "Ready")
    seen = phases("ns-a", "ma")
    assert seen["Ready"] == 1
    assert set(seen) == {"Pending", "Resolving", "RollingOut", "Ready", "Failed", "Blocked"}
    assert sum(seen.values()) == 1


def test_a_resource_without_a_phase_is_pending_and_a_forgotten_one_has_no_series() -> None:
    metrics.record_phase("ns-b", "ma", None)
    assert phases("ns-b", "ma")["Pending"] == 1
    metrics.forget("ns-b", "ma")
    assert phases("ns-b", "ma") == {}


@pytest.mark.timeout(300)
async def test_the_running_operator_serves_metrics_that_follow_a_rollout(
    kube: KubeApi, namespace: str, start_operator, register_models: Callable[..., RegisteredModel]
) -> None:
    model = register_models()
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    await o.create(kube, namespace, "deployments", o.deployment("predictor"))
    start_operator(model.tracking_uri, METRICS_PORT=str(port), METRICS_HOST="127.0.0.1")

    before = scrape(url)
    assert {name: before.types().get(name) for name in FAMILIES} == FAMILIES
    await o.create(kube, namespace, "modelaliases", o.model_alias("ma", model.name, "staging"))
    await o.wait_pinned(kube, namespace, "deployments", "predictor", model.version_of("staging"))
    await o.roll_deployment(kube, namespace, "predictor")
    await o.wait_status(kube, namespace, "ma", lambda s: s.get("phase") == "Ready", what="Ready")
    after = await o.wait_for(
        lambda: asyncio.to_thread(scrape, url),
        lambda s: (
            s.value("btcf_operator_modelalias_phase", namespace=namespace, name="ma", phase="Ready") == 1
        ),
        what="the Ready phase in the operator's metrics",
    )

    assert after.value("btcf_operator_reconciles_total", outcome="ok") >= 2
    assert after.value("btcf_operator_rollouts_started_total", strategy="Rollout") == 1
    assert after.value("btcf_operator_rollouts_completed_total", strategy="Rollout") == 1
    assert (
        after.value("btcf_operator_modelalias_phase", namespace=namespace, name="ma", phase="RollingOut") == 0
    )
