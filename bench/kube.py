"""Figures for Kubernetes for real: control-plane start, chart install, operator rollout.

Runs the project's own v1.20.2 control plane (binaries from ``scripts/kube/build.sh``), installs the
chart with Helm v4 (helm-python-sdk) until every object is accepted, then times the operator (a
``kopf run`` process holding only its ServiceAccount's token from the chart) rolling a real
Deployment out to the version an MLflow alias points at, with the node simulator playing the
kubelet. Build times and image sizes are printed by ``scripts/kube/build.sh`` and
``scripts/images.sh`` themselves.

    PYTHONPATH=. .venv/bin/python bench/kube.py [--rounds 3]     (it reuses the test helpers in tests/)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from btcf_operator.kube import KubeApi
from kubernetes import client, config

from btcforecast import registry
from btcforecast.devservers.mlflow_server import mlflow_server
from btcforecast.kube import api_client
from btcforecast.market import generate_bars, read_csv
from btcforecast.training import TrainingParams, train_for_base_date
from tests.k8s import helm
from tests.k8s.controlplane import ControlPlane
from tests.k8s.nodesim import NodeSimulator
from tests.operator import objects as o
from tests.operator.cluster import apply, chart_rbac, install_crds, operator_process, service_account_name
from tests.operator.objects import FAST_OPERATOR_ENV

ROOT = Path(__file__).resolve().parents[1]


def create_namespace(api: client.ApiClient, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def time_chart_install(plane: ControlPlane, api: client.ApiClient) -> float:
    """Seconds from `helm install` (defaults, no --wait) to every object accepted by the API server."""
    namespace = create_namespace(api, "bench-chart")
    began = time.monotonic()
    helm.install(plane.admin_kubeconfig, "bench", namespace)
    took = time.monotonic() - began
    helm.uninstall(plane.admin_kubeconfig, "bench", namespace)
    return took


async def time_rollout(plane: ControlPlane, api: client.ApiClient, tracking_uri: str, model: str) -> float:
    """Seconds from a ModelAlias created to phase Ready on real Deployments and ReplicaSets."""
    namespace = create_namespace(api, "bench-op")
    rbac = chart_rbac(namespace, "operator")
    apply(plane.admin_kubeconfig, rbac, namespace)
    kubeconfig = plane.kubeconfig_for_serviceaccount(namespace, service_account_name(rbac))
    admin = KubeApi(api_client(str(plane.admin_kubeconfig)), timeout=20.0)
    log = plane.cert_dir.parent / f"operator-{namespace}.log"
    operator = operator_process(kubeconfig, namespace, tracking_uri, log, FAST_OPERATOR_ENV)
    with NodeSimulator(api, namespace), operator:
        await o.create(admin, namespace, "deployments", o.deployment("predictor"))
        began = time.monotonic()
        await o.create(
            admin, namespace, "modelaliases", o.model_alias("ma", model, "production", poll_seconds=5)
        )
        await o.wait_status(admin, namespace, "ma", lambda s: s.get("phase") == "Ready", timeout=300)
        took = time.monotonic() - began
    admin.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--csv", help="hourly CSV (default: BTC_DATA_CSV, else synthetic bars)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-kube-") as tmp:
        work = Path(tmp)
        plane = ControlPlane(work / "plane")
        plane.start()
        try:
            token_began = time.monotonic()
            api = config.new_client_from_config(config_file=str(plane.admin_kubeconfig))
            probe = create_namespace(api, "bench-token")
            plane.kubeconfig_for_serviceaccount(probe, "default")
            first_token = time.monotonic() - token_began
            print(
                f"control plane start: /readyz {plane.timings['readyz']:.1f} s, controllers "
                f"{plane.timings['controllers']:.1f} s, then first ServiceAccount token {first_token:.1f} s"
            )

            install_crds(plane.admin_kubeconfig)
            installs = [time_chart_install(plane, api) for _ in range(args.rounds)]
            print(
                f"helm install (defaults, {args.rounds} rounds) to every object accepted: "
                f"median {statistics.median(installs):.1f} s "
                f"(min {min(installs):.1f}, max {max(installs):.1f})"
            )

            csv = args.csv or os.environ.get("BTC_DATA_CSV")
            bars = read_csv(csv) if csv else generate_bars()
            params = TrainingParams(train_days=30, epochs=3, patience=2)
            trained = train_for_base_date(bars, bars.index[-1].date(), params)
            with mlflow_server(work / "mlflow") as server:
                mlflow = registry.connect(server.url)
                registry.register(mlflow, "btc-lstm-bench", trained, alias="production")
                rollouts = [
                    asyncio.run(time_rollout(plane, api, server.url, "btc-lstm-bench"))
                    for _ in range(args.rounds)
                ]
            print(
                f"operator: ModelAlias created -> Ready (2 replicas, real controllers, simulated node, "
                f"{args.rounds} rounds): median {statistics.median(rollouts):.1f} s "
                f"(min {min(rollouts):.1f}, max {max(rollouts):.1f})"
            )
        finally:
            plane.stop()


if __name__ == "__main__":
    main()
