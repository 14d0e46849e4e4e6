"""The quality gate on the real API server: the operator asks the real facade, which asks the real predictor.

The operator runs under the chart's RBAC with ``FACADE_URL`` set; the facade and the predictor run
as processes on loopback for a model of the module's own, which holds the session's versions
(base dates 2025-03-20, 03-27, 04-03, 07-24) plus one deliberately bad version: trained for
2025-07-24 on bars whose hourly log returns are scaled up 10x, so its 80% band is several times
too wide. Measured on the real data (168 hours from 2025-07-25): pinball 236.9 against 84.9 for the
normal 07-24 model (2.8x), MAE 260.7 against 250.7; the 07-24 model against the 04-03 one: pinball
84.9 vs 90.5, MAE 250.7 vs 251.9.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from btcf_operator.kube import KubeApi

from btcforecast import registry
from btcforecast.devservers import components
from btcforecast.devservers.process import ManagedProcess, free_port
from btcforecast.training import train_for_base_date
from tests.facade.conftest import (  # noqa: F401  (market_uri is a fixture)
    RELOAD_TOKEN,
    facade_env,
    facade_process,
    market_uri,
    wait_until,
)
from tests.fixtures.registry import FAST_TRAINING, RegisteredModel
from tests.k8s.nodesim import NodeSimulator
from tests.operator import objects as o

pytest_plugins = ["tests.fixtures.kube", "tests.operator.cluster_fixtures"]
pytestmark = [pytest.mark.kube, pytest.mark.timeout(900)]

WAIT = 180.0
POLL = 5
BAD_ALIAS = "volatile"
VOLATILITY_FACTOR = 10.0


def volatile_bars(bars: pd.DataFrame, factor: float) -> pd.DataFrame:
    """The same bars with every log price move (hour to hour and within the hour) ``factor`` times larger."""
    out = bars.copy()
    ref = float(bars["close"].iloc[-1])
    log_close = np.log(bars["close"] / ref)
    for column in ("open", "high", "low"):
        out[column] = ref * np.exp(factor * (log_close + np.log(bars[column] / bars["close"])))
    out["close"] = ref * np.exp(factor * log_close)
    out.attrs.update(bars.attrs)
    return out


@pytest.fixture(scope="module")
def gate_model(register_models: Callable[..., RegisteredModel], market_bars: pd.DataFrame) -> RegisteredModel:
    """The session's versions under a new name, plus the bad one under alias ``volatile``."""
    model = register_models()
    bad = train_for_base_date(volatile_bars(market_bars, VOLATILITY_FACTOR), date(2025, 7, 24), FAST_TRAINING)
    client = registry.connect(model.tracking_uri)
    model.aliases[BAD_ALIAS] = registry.register(client, model.name, bad, alias=BAD_ALIAS)
    return model


@pytest.fixture(scope="module")
def gate_facade(
    tmp_path_factory: pytest.TempPathFactory,
    gate_model: RegisteredModel,
    market_uri: str,  # noqa: F811
) -> Iterator[ManagedProcess]:
    """A real predictor and facade for ``gate_model``: what the operator's gate asks."""
    state = tmp_path_factory.mktemp("gate")
    port = free_port()
    predictor_env = {
        "MLFLOW_TRACKING_URI": gate_model.tracking_uri,
        "MODEL_NAME": gate_model.name,
        "MODEL_ALIAS": "production",
        "STATE_DIR": str(state / "predictor"),
        "RELOAD_TOKEN": RELOAD_TOKEN,
    }
    predictor = components.predictor_process(
        port, predictor_env, state / "predictor.log", ready_path="/v2/health/live", ready_timeout=90
    )
    with predictor:
        wait_until(lambda: httpx.get(f"{predictor.url}/v2/health/ready").status_code == 200, 90)
        env = facade_env(
            registered=gate_model,
            predictor_url=predictor.url,
            market_uri=market_uri,
            state=state / "facade",
            PREDICTOR_MODEL=gate_model.name,  # the predictor's KServe endpoint is its MODEL_NAME
        )
        with facade_process(env, state) as facade:
            yield facade


async def wait_phase(admin: KubeApi, namespace: str, phase: str) -> dict[str, Any]:
    return await o.wait_status(
        admin, namespace, "ma", lambda s: s.get("phase") == phase, timeout=WAIT, what=phase
    )


def template_version(dep: dict[str, Any]) -> str | None:
    env = dep["spec"]["template"]["spec"]["containers"][0].get("env") or []
    return next((e.get("value") for e in env if e["name"] == "MODEL_VERSION"), None)


async def serving(
    admin: KubeApi,
    namespace: str,
    start_operator: Callable[..., ManagedProcess],
    model: RegisteredModel,
    facade: ManagedProcess,
    alias: str,
    gate: dict[str, Any],
) -> str:
    """A predictor Deployment serving ``alias`` through a gated ModelAlias, Ready; its version."""
    await o.create(admin, namespace, "deployments", o.deployment("predictor"))
    start_operator(model.tracking_uri, FACADE_URL=facade.url)
    ma = o.model_alias("ma", model.name, alias, poll_seconds=POLL, gate=gate)
    await o.create(admin, namespace, "modelaliases", ma)
    return str((await wait_phase(admin, namespace, "Ready"))["resolvedVersion"])


async def gate_events(admin: KubeApi, namespace: str) -> list[dict[str, Any]]:
    return [
        e
        for e in await o.events(admin, namespace)
        if str(e.get("reason", "")).startswith(("Quality", "Gate"))
    ]


async def test_a_version_better_than_the_served_one_passes_the_gate_and_rolls_out(
    admin: KubeApi,
    kube_namespace: str,
    node_simulator: NodeSimulator,
    start_operator: Callable[..., ManagedProcess],
    gate_model: RegisteredModel,
    gate_facade: ManagedProcess,
) -> None:
    ns = kube_namespace
    older, newer = gate_model.version_of("backtest_20250403"), gate_model.version_of("backtest_20250724")
    assert await serving(admin, ns, start_operator, gate_model, gate_facade, "backtest_20250403", {}) == older

    await admin.patch_modelalias_spec(ns, "ma", {"alias": "backtest_20250724"})
    status = await o.wait_status(
        admin,
        ns,
        "ma",
        lambda s: s.get("resolvedVersion") == newer and s.get("phase") == "Ready",
        timeout=WAIT,
    )

    gate = status["gate"]
    assert (gate["candidate"], gate["incumbent"], gate["decision"]) == (newer, older, "Passed")
    assert (gate["hours"], gate["windowStart"], gate["windowEnd"]) == (
        168,
        "2025-07-25T00:00:00Z",
        "2025-07-31T23:00:00Z",
    )
    assert gate["lossRatio"] <= 1.02 and gate["maeRatio"] <= 1.02
    dep = await o.get(admin, ns, "deployments", "predictor")
    assert template_version(dep) == newer
    assert [e["reason"] for e in await gate_events(admin, ns)] == ["QualityGatePassed"]


async def test_a_deliberately_bad_version_is_blocked_and_the_served_one_keeps_serving(
    admin: KubeApi,
    kube_namespace: str,
    node_simulator: NodeSimulator,
    start_operator: Callable[..., ManagedProcess],
    gate_model: RegisteredModel,
    gate_facade: ManagedProcess,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ns = kube_namespace
    good, bad = gate_model.version_of("backtest_20250724"), gate_model.version_of(BAD_ALIAS)
    assert await serving(admin, ns, start_operator, gate_model, gate_facade, "backtest_20250724", {}) == good

    await admin.patch_modelalias_spec(ns, "ma", {"alias": BAD_ALIAS})
    status = await wait_phase(admin, ns, "Blocked")

    assert o.condition(status, "RolledOut")["reason"] == "QualityGate"
    assert o.condition(status, "RolledOut")["status"] == "False"
    assert o.condition(status, "Ready")["status"] == "True"
    assert status["resolvedVersion"] == good
    gate = status["gate"]
    assert (gate["candidate"], gate["incumbent"], gate["decision"]) == (bad, good, "Refused")
    assert gate["candidatePinball"] > 2 * gate["incumbentPinball"]  # measured: 2.8x
    assert gate["lossRatio"] > gate["maxLossRatio"] == 1.02
    assert "refused" in status["message"] and f"still serving version {good}" in status["message"]
    dep = await o.get(admin, ns, "deployments", "predictor")
    assert template_version(dep) == good
    pods = await admin.list_pods(ns, {"app": "predictor"})
    assert {template_version({"spec": {"template": {"spec": p["spec"]}}}) for p in pods} == {good}
    [event] = await gate_events(admin, ns)
    assert (event["type"], event["reason"]) == ("Warning", "QualityGate")
    with capsys.disabled():
        print(f"\n[figure] quality gate refusal, status.gate: {gate}")


async def test_a_gate_with_no_recent_data_blocks_with_gate_no_data(
    admin: KubeApi,
    kube_namespace: str,
    node_simulator: NodeSimulator,
    start_operator: Callable[..., ManagedProcess],
    gate_model: RegisteredModel,
    gate_facade: ManagedProcess,
) -> None:
    ns = kube_namespace
    gate = {"hours": 720, "minHours": 720}  # only 192 hours follow the 2025-07-24 base date
    served = await serving(admin, ns, start_operator, gate_model, gate_facade, "backtest_20250403", gate)

    await admin.patch_modelalias_spec(ns, "ma", {"alias": "backtest_20250724"})
    status = await wait_phase(admin, ns, "Blocked")

    assert o.condition(status, "RolledOut")["reason"] == "GateNoData"
    assert status["resolvedVersion"] == served
    assert status["gate"]["decision"] == "NoData"
    assert "only 192 hours" in status["message"] and "at least 720 needed" in status["message"]
    assert template_version(await o.get(admin, ns, "deployments", "predictor")) == served
