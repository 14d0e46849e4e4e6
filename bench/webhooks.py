"""Figures for MLflow alias webhooks: alias moved in MLflow -> the operator's rollout started.

One run, the same alias moves timed twice: through the webhook (the operator registers its receiver
in a real MLflow server, which POSTs each move), and through the poll alone (webhook off), both with
the ModelAlias's ``pollSeconds`` as the chart configures it (``modelAlias.pollSeconds``). "Rollout
started" is the operator pinning the new version on the predictor Deployment, read from the
Kubernetes API emulator of the operator tests every 0.2 s (the figures' resolution). Before each move
the script waits a random part of ``pollSeconds`` (the same seeded delays for both paths), so a move
lands anywhere in the poll period, as in life.

    PYTHONPATH=.:operator .venv/bin/python bench/webhooks.py [--moves 5] [--poll-seconds 60]
    (reuses the test helpers in tests/ and the development MLflow server)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml
from btcf_operator.kube import KubeApi
from btcf_operator.webhook import WEBHOOK_PATH

from btcforecast import registry
from btcforecast.devservers.mlflow_server import mlflow_server
from btcforecast.devservers.process import free_port
from btcforecast.kube import api_client
from btcforecast.market import generate_bars, read_csv
from btcforecast.training import TrainingParams, train_for_base_date
from tests.chart.chart_helpers import CHART
from tests.operator import objects as o
from tests.operator.cluster import operator_process
from tests.operator.conftest import CRD
from tests.operator.kube_emulator import EmulatorThread
from tests.operator.objects import FAST_OPERATOR_ENV

MODEL = "btc-lstm-bench-webhooks"
ALIAS = "production"
SECRET = "bench-webhook-secret"


def chart_poll_seconds() -> int:
    return int(yaml.safe_load((CHART / "values.yaml").read_text())["modelAlias"]["pollSeconds"])


async def time_moves(
    kubeconfig: Path,
    tracking_uri: str,
    versions: tuple[str, str],
    delays: list[float],
    poll_seconds: int,
    work: Path,
    *,
    webhook: bool,
) -> list[float]:
    """Seconds from each alias move to the new version pinned on the Deployment."""
    namespace = f"bench-{'hook' if webhook else 'poll'}-{uuid.uuid4().hex[:6]}"
    env = dict(FAST_OPERATOR_ENV)
    if webhook:
        port = free_port()
        env |= {
            "MLFLOW_WEBHOOK_URL": f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
            "MLFLOW_WEBHOOK_SECRET": SECRET,
            "WEBHOOK_PORT": str(port),
            "WEBHOOK_NAME": namespace,
        }
    mlflow = registry.connect(tracking_uri)
    registry.set_alias(mlflow, MODEL, ALIAS, versions[0])
    kube = KubeApi(api_client(str(kubeconfig)), timeout=10.0)
    took: list[float] = []
    with operator_process(kubeconfig, namespace, tracking_uri, work / f"{namespace}.log", env):
        await o.create(kube, namespace, "deployments", o.deployment("predictor"))
        controller = asyncio.create_task(o.deployment_controller(kube, namespace))  # needs the Deployment
        try:
            await o.create(
                kube, namespace, "modelaliases", o.model_alias("ma", MODEL, ALIAS, poll_seconds=poll_seconds)
            )
            await o.wait_status(kube, namespace, "ma", lambda s: s.get("phase") == "Ready", timeout=120)
            if webhook:  # registered, and past MLflow's webhook-list cache (2 s on the dev server)
                await o.wait_for(
                    lambda: asyncio.to_thread(mlflow.list_webhooks),
                    lambda hooks: any(h.name == namespace for h in hooks),
                    what="the operator's webhook registered",
                )
                await asyncio.sleep(3)
            for i, delay in enumerate(delays):
                await asyncio.sleep(delay)
                target = versions[(i + 1) % 2]
                began = time.monotonic()
                await asyncio.to_thread(registry.set_alias, mlflow, MODEL, ALIAS, target)
                await o.wait_for(
                    lambda: o.get(kube, namespace, "deployments", "predictor"),
                    lambda dep, target=target: o.pinned_version(dep) == target,
                    timeout=poll_seconds + 120,
                    what=f"version {target} pinned",
                )
                took.append(time.monotonic() - began)
                await o.wait_status(
                    kube,
                    namespace,
                    "ma",
                    lambda s, target=target: (s.get("phase"), s.get("resolvedVersion")) == ("Ready", target),
                    timeout=120,
                )
        finally:
            controller.cancel()
            kube.close()
    if webhook:  # so the poll path's moves are not also delivered to a receiver that has gone
        for hook in mlflow.list_webhooks():
            if hook.name == namespace:
                mlflow.delete_webhook(hook.webhook_id)
    return took


def summary(took: list[float]) -> str:
    return f"p50 {statistics.median(took):.1f} s (min {min(took):.1f}, max {max(took):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=5)
    parser.add_argument("--poll-seconds", type=int, default=chart_poll_seconds())
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--csv", help="hourly CSV (default: BTC_DATA_CSV, else synthetic bars)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    delays = [rng.uniform(0, args.poll_seconds) for _ in range(args.moves)]

    work = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    try:
        emulator = EmulatorThread(free_port(), crd=CRD).start()
        kubeconfig = emulator.write_kubeconfig(work / "kubeconfig")
        try:
            csv = args.csv or os.environ.get("BTC_DATA_CSV")
            bars = read_csv(csv) if csv else generate_bars()
            trained = train_for_base_date(
                bars, bars.index[-1].date(), TrainingParams(train_days=30, epochs=2, patience=1)
            )
            with mlflow_server(work / "mlflow", ready_timeout=240) as server:
                client = registry.connect(server.url)
                versions = (
                    registry.register(client, MODEL, trained),
                    registry.register(client, MODEL, trained),
                )
                results = {
                    path: asyncio.run(
                        time_moves(
                            kubeconfig,
                            server.url,
                            versions,
                            delays,
                            args.poll_seconds,
                            work,
                            webhook=path == "webhook",
                        )
                    )
                    for path in ("webhook", "poll")
                }
        finally:
            emulator.stop()
    except BaseException:
        print(f"failed; the operators' and MLflow's logs are kept in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)
    print(f"alias moved in MLflow -> rollout started ({args.moves} moves, pollSeconds {args.poll_seconds}):")
    for path, took in results.items():
        print(f"  {path:8} {summary(took)}   [{', '.join(f'{t:.1f}' for t in took)}]")


if __name__ == "__main__":
    main()
