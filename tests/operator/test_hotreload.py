"""HotReload against two real predictor processes on loopback standing for two pods."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from btcf_operator.kube import KubeApi

from btcforecast.devservers import components
from btcforecast.devservers.process import ManagedProcess, free_ports
from tests.fixtures.registry import RegisteredModel
from tests.operator import objects as o

pytestmark = pytest.mark.timeout(300)
TOKEN = "reload-secret"


@pytest.fixture
def model(register_models: Callable[..., RegisteredModel]) -> RegisteredModel:
    return register_models()


@pytest.fixture
def predictors(model: RegisteredModel, tmp_path: Path) -> Iterator[list[ManagedProcess]]:
    """Two predictors serving backtest_20250320, each on its own loopback port."""
    processes = [
        components.predictor_process(
            port,
            {
                "MLFLOW_TRACKING_URI": model.tracking_uri,
                "MODEL_NAME": model.name,
                "RELOAD_TOKEN": TOKEN,
                "STATE_DIR": str(tmp_path / f"state-{i}"),
            },
            tmp_path / f"predictor-{i}.log",
            ready_path="/v2/models/btc-lstm/ready",
            extra_args=["--model_name", "btc-lstm", "--model_alias", "backtest_20250320"],
            name=f"predictor-{i}",
        )
        for i, port in enumerate(free_ports(2))
    ]
    try:
        for process in processes:
            process.start()
        yield processes
    finally:
        for process in processes:
            process.stop()


def serving(process: ManagedProcess) -> str:
    return httpx.get(f"{process.url}/v2/models/btc-lstm/serving", timeout=10, trust_env=False).json()[
        "model_version"
    ]


async def test_hot_reload_swaps_every_ready_pod_to_the_alias_version(
    kube: KubeApi, namespace: str, start_operator, model: RegisteredModel, predictors: list[ManagedProcess]
) -> None:
    labels = {"app": "predictor"}
    await o.create(kube, namespace, "deployments", o.deployment("predictor", labels=labels))
    for i, process in enumerate(predictors):
        await o.create(
            kube, namespace, "pods", o.pod(f"predictor-{i}", labels, int(process.url.rsplit(":", 1)[1]))
        )
    await o.create(
        kube,
        namespace,
        "secrets",
        {"metadata": {"name": "tokens"}, "data": {"RELOAD_TOKEN": base64.b64encode(TOKEN.encode()).decode()}},
    )
    start_operator(model.tracking_uri)
    wanted = model.version_of("backtest_20250403")
    await o.create(
        kube,
        namespace,
        "modelaliases",
        o.model_alias(
            "ma", model.name, "backtest_20250403", strategy="HotReload", secret=("tokens", "RELOAD_TOKEN")
        ),
    )

    status = await o.wait_status(kube, namespace, "ma", lambda s: s.get("phase") in ("Ready", "Failed"))

    assert (status["phase"], status["resolvedVersion"]) == ("Ready", wanted), status.get("message")
    assert [serving(p) for p in predictors] == [wanted, wanted]
    dep = await o.get(kube, namespace, "deployments", "predictor")
    assert dep["metadata"]["generation"] == 1  # hot reload leaves the pod template alone
