"""HotReload on the real API server: real predictor processes listening at the pods' IPs.

The node simulator reports each pod of the predictor Deployment with its own loopback address
(127.10.x.y); a real predictor process listens there on the pod's declared port. The operator, with
only its ServiceAccount's token, finds the ready pods through the API, reads the reload token from
the chart's Secret and swaps the version in place on every pod, or on none.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from btcf_operator.kube import KubeApi

from btcforecast.devservers import components
from btcforecast.devservers.process import ManagedProcess
from tests.fixtures.registry import RegisteredModel
from tests.k8s.nodesim import NodeSimulator, next_loopback_ip
from tests.operator import objects as o
from tests.operator.cluster import SECRET_NAME

pytest_plugins = ["tests.fixtures.kube", "tests.operator.cluster_fixtures"]
pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

WAIT = 180.0
TOKEN = "hot-reload-token"
FIRST = "backtest_20250320"
REPLICAS = 2


@pytest.fixture(scope="module")
def model(register_models: Callable[..., RegisteredModel]) -> RegisteredModel:
    return register_models()


def common_free_port(hosts: list[str]) -> int:
    """A port free on every one of ``hosts`` (each pod of a Deployment declares the same port)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind((hosts[0], 0))
            port = first.getsockname()[1]
            try:
                for host in hosts[1:]:
                    with socket.socket() as other:
                        other.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no port free on all of {hosts}")


@pytest.fixture
def pod_addresses(node_simulator: NodeSimulator) -> tuple[list[str], int]:
    """The IPs the node simulator gives the predictor's pods, in creation order, and their port."""
    ips = [next_loopback_ip() for _ in range(REPLICAS)]
    handed: dict[str, str] = {}

    def pod_ip(pod: dict[str, Any]) -> str:
        name = pod["metadata"]["name"]
        if name not in handed:
            handed[name] = ips[len(handed) % len(ips)]
        return handed[name]

    node_simulator.pod_ip = pod_ip
    return ips, common_free_port(ips)


@pytest.fixture
def predictors(
    pod_addresses: tuple[list[str], int], model: RegisteredModel, tmp_path: Path
) -> Iterator[list[ManagedProcess]]:
    """A real predictor at each pod IP, serving FIRST."""
    ips, port = pod_addresses
    processes = [
        components.predictor_process(
            port,
            {
                "MLFLOW_TRACKING_URI": model.tracking_uri,
                "MODEL_NAME": model.name,
                "RELOAD_TOKEN": TOKEN,
                "STATE_DIR": str(tmp_path / f"state-{ip}"),
            },
            tmp_path / f"predictor-{ip}.log",
            ready_path="/v2/models/btc-lstm/ready",
            extra_args=["--model_name", "btc-lstm", "--model_alias", FIRST],
            host=ip,
            name=f"predictor-{ip}",
        )
        for ip in ips
    ]
    try:
        for process in processes:
            process.start()
        yield processes
    finally:
        for process in processes:
            process.stop()


def serving(process: ManagedProcess) -> str:
    answer = httpx.get(f"{process.url}/v2/models/btc-lstm/serving", timeout=10, trust_env=False)
    return str(answer.json()["model_version"])


async def deploy(admin: KubeApi, namespace: str, port: int) -> None:
    """The predictor Deployment (pods declare ``port``) and the chart's Secret with the reload token."""
    dep = o.deployment("predictor", replicas=REPLICAS)
    dep["spec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"name": "http", "containerPort": port, "protocol": "TCP"}
    ]
    await o.create(admin, namespace, "deployments", dep)
    token = base64.b64encode(TOKEN.encode()).decode()
    await o.create(
        admin, namespace, "secrets", {"metadata": {"name": SECRET_NAME}, "data": {"RELOAD_TOKEN": token}}
    )
    await o.wait_for(
        lambda: o.get(admin, namespace, "deployments", "predictor"),
        lambda d: (d.get("status") or {}).get("availableReplicas") == REPLICAS,
        timeout=WAIT,
        what="the predictor pods Ready",
    )


def hot_reload_alias(model: str, alias: str) -> dict[str, Any]:
    return o.model_alias(
        "ma", model, alias, strategy="HotReload", secret=(SECRET_NAME, "RELOAD_TOKEN"), poll_seconds=5
    )


async def test_hot_reload_swaps_the_predictor_at_every_ready_pod_ip(
    admin: KubeApi,
    kube_namespace: str,
    pod_addresses: tuple[list[str], int],
    predictors: list[ManagedProcess],
    start_operator: Callable[..., ManagedProcess],
    model: RegisteredModel,
) -> None:
    ns = kube_namespace
    await deploy(admin, ns, pod_addresses[1])
    start_operator(model.tracking_uri)
    await o.create(admin, ns, "modelaliases", hot_reload_alias(model.name, "backtest_20250403"))

    status = await o.wait_status(
        admin, ns, "ma", lambda s: s.get("phase") in ("Ready", "Failed"), timeout=WAIT, what="the hot reload"
    )

    wanted = model.version_of("backtest_20250403")
    assert (status["phase"], status["resolvedVersion"]) == ("Ready", wanted), status.get("message")
    assert o.condition(status, "RolledOut")["reason"] == "HotReloadComplete"
    assert [serving(p) for p in predictors] == [wanted, wanted]
    pods = await admin.list_pods(ns, {"app": "predictor"})
    assert sorted(p["status"]["podIP"] for p in pods) == sorted(pod_addresses[0])
    dep = await o.get(admin, ns, "deployments", "predictor")
    assert dep["metadata"]["generation"] == 1  # in place: the pod template is not touched


async def test_a_pod_that_cannot_reload_sends_every_pod_back_to_the_previous_version(
    admin: KubeApi,
    kube_namespace: str,
    pod_addresses: tuple[list[str], int],
    predictors: list[ManagedProcess],
    start_operator: Callable[..., ManagedProcess],
    model: RegisteredModel,
) -> None:
    ns = kube_namespace
    await deploy(admin, ns, pod_addresses[1])
    start_operator(model.tracking_uri)
    await o.create(admin, ns, "modelaliases", hot_reload_alias(model.name, FIRST))
    await o.wait_status(admin, ns, "ma", lambda s: s.get("phase") == "Ready", timeout=WAIT, what="Ready")
    first = model.version_of(FIRST)

    predictors[1].stop()  # its pod still reports Ready: the reload call is what fails
    await admin.patch_modelalias_spec(ns, "ma", {"alias": "backtest_20250403"})
    status = await o.wait_status(admin, ns, "ma", lambda s: s.get("phase") == "Failed", timeout=WAIT)

    assert o.condition(status, "RolledOut")["reason"] == "HotReloadFailed"
    assert (status["resolvedVersion"], status["failedVersion"]) == (
        first,
        model.version_of("backtest_20250403"),
    )
    assert serving(predictors[0]) == first
