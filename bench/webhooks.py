"""Figures for MLflow alias webhooks: alias moved in MLflow -> the operator's rollout started.

One run, the same alias moves timed twice: through the webhook (the operator registers its receiver
in a real MLflow server, which POSTs each move), and through the poll alone (webhook off), both with
the ModelAlias's ``pollSeconds`` as the chart configures it (``modelAlias.pollSeconds``). "Rollout
started" is the operator pinning the new version on the predictor Deployment, read from the
Kubernetes API emulator of the operator tests through a watch on the Deployment (the moment the
patch is committed, to the millisecond). Before each move the script waits a random part of
``pollSeconds`` (the same seeded delays for both paths), so a move lands anywhere in the poll period,
as in life.

Each move's timeline is read from the operator's own log (kopf ``--verbose``, millisecond
timestamps; the same clock): alias call returned -> MLflow's delivery reached the receiver ->
signature verified and followers woken -> the follower's step resumed -> the step asks MLflow
(resource read, lock held) -> MLflow answered -> status written -> Deployment patched -> the watch
saw it. The script prints the median of each stage beside the p50, and the load average.

    PYTHONPATH=.:operator .venv/bin/python bench/webhooks.py [--moves 5] [--seed 13]
        [--poll-seconds 60] [--paths webhook,poll] [--each] [--keep]
    (reuses the test helpers in tests/ and the development MLflow server; ``--each`` prints every
    move's timeline, ``--keep`` keeps the operators' and MLflow's logs, kept anyway on a failure)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
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


STAGES: tuple[tuple[str, str], ...] = (
    ("received", r"MLflow webhook delivery \S+ received"),
    ("woken", r"alias \S+ created \(version {v}\): woke \["),
    ("resumed", r"woken by an MLflow webhook"),
    ("asking", r"asking MLflow where"),
    ("resolved", r"MLflow: \S+ is version {v}$"),
    ("recorded", r"change to version {v} recorded in status"),
    ("patched", r"pinned to version {v}$"),
)
"""(stage, operator log line that marks it; ``{v}`` is the version moved to), in order."""
LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] (.*)$")


@dataclass
class Move:
    version: str
    began: float  # wall clock (time.time()), the operator log's clock
    stages: dict[str, float] = field(default_factory=dict)
    """stage -> seconds since ``began``: "returned", the log's stages, "seen"."""

    @property
    def took(self) -> float:
        return self.stages["seen"]


def log_times(log: Path) -> list[tuple[float, str]]:
    """(wall-clock time, message) of each timestamped line of a kopf log."""
    lines = []
    for line in log.read_text(errors="replace").splitlines():
        if m := LOG_LINE.match(line):
            stamp = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()  # local, as logged
            lines.append((stamp, m.group(2)))
    return lines


def read_timeline(moves: list[Move], log: Path) -> None:
    """Fill each move's log stages: the first marker line between its start and the next move's."""
    lines = log_times(log)
    for i, move in enumerate(moves):
        end = moves[i + 1].began if i + 1 < len(moves) else float("inf")
        for stage, pattern in STAGES:
            marker = re.compile(pattern.format(v=re.escape(move.version)))
            # the log keeps milliseconds: a line in the same millisecond as ``began`` counts
            hit = next(
                (t for t, text in lines if move.began - 0.001 <= t < end and marker.search(text)), None
            )
            if hit is not None:
                move.stages[stage] = max(hit - move.began, 0.0)


async def watch_pinned(base: str, namespace: str, version: str, since: str, timeout: float) -> float:
    """time.time() when the emulator sent the Deployment pinned to ``version`` (a watch from ``since``)."""
    url = f"{base}/apis/apps/v1/namespaces/{namespace}/deployments"
    params = {"watch": "true", "resourceVersion": since, "timeoutSeconds": str(int(timeout) + 1)}
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout + 10), trust_env=False) as http:
        async with asyncio.timeout(timeout):
            async with http.stream("GET", url, params=params) as response:
                response.raise_for_status()
                async for line in response.aiter_lines():
                    if line.strip() and o.pinned_version(json.loads(line)["object"]) == version:
                        return time.time()
    raise AssertionError(f"the watch ended before version {version} was pinned")


async def time_moves(
    kubeconfig: Path,
    api_url: str,
    tracking_uri: str,
    versions: tuple[str, str],
    delays: list[float],
    poll_seconds: int,
    work: Path,
    *,
    webhook: bool,
) -> list[Move]:
    """Each alias move, timed from the alias call to the new version pinned on the Deployment."""
    namespace = f"bench-{'hook' if webhook else 'poll'}-{uuid.uuid4().hex[:6]}"
    log = work / f"{namespace}.log"
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
    moves: list[Move] = []
    # The Deployment first: the emulator's namespaces exist through their objects, so the operator
    # serves this one from its first namespace listing instead of from the watch that follows it.
    await o.create(kube, namespace, "deployments", o.deployment("predictor"))
    with operator_process(kubeconfig, namespace, tracking_uri, log, env):
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
                since = (await o.get(kube, namespace, "deployments", "predictor"))["metadata"][
                    "resourceVersion"
                ]
                watch = asyncio.create_task(
                    watch_pinned(api_url, namespace, target, since, timeout=poll_seconds + 120)
                )
                move = Move(target, time.time())
                await asyncio.to_thread(registry.set_alias, mlflow, MODEL, ALIAS, target)
                move.stages["returned"] = time.time() - move.began
                move.stages["seen"] = await watch - move.began
                moves.append(move)
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
    read_timeline(moves, log)
    if webhook:  # so the poll path's moves are not also delivered to a receiver that has gone
        for hook in mlflow.list_webhooks():
            if hook.name == namespace:
                mlflow.delete_webhook(hook.webhook_id)
    return moves


def timeline(moves: list[Move]) -> str:
    """Median seconds from the alias call to each stage, and (in brackets) of each stage's own step."""
    order = ["returned", *(stage for stage, _ in STAGES), "seen"]
    parts, last = [], 0.0
    for stage in order:
        values = [m.stages[stage] for m in moves if stage in m.stages]
        if not values:
            continue
        at = statistics.median(values)
        parts.append(f"{stage} {at:.3f} (+{at - last:.3f})")
        last = at
    return " -> ".join(parts)


def summary(moves: list[Move]) -> str:
    took = [m.took for m in moves]
    return f"p50 {statistics.median(took):.2f} s (min {min(took):.2f}, max {max(took):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=5)
    parser.add_argument("--poll-seconds", type=int, default=chart_poll_seconds())
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--paths", default="webhook,poll", help="which paths to time, comma-separated (webhook, poll)"
    )
    parser.add_argument("--each", action="store_true", help="print every move's timeline too")
    parser.add_argument("--keep", action="store_true", help="keep the operators' and MLflow's logs")
    parser.add_argument("--csv", help="hourly CSV (default: BTC_DATA_CSV, else synthetic bars)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    delays = [rng.uniform(0, args.poll_seconds) for _ in range(args.moves)]

    load_before = os.getloadavg()
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
                            emulator.url,
                            server.url,
                            versions,
                            delays,
                            args.poll_seconds,
                            work,
                            webhook=path == "webhook",
                        )
                    )
                    for path in args.paths.split(",")
                }
        finally:
            emulator.stop()
    except BaseException:
        print(f"failed; the operators' and MLflow's logs are kept in {work}", file=sys.stderr)
        raise
    if args.keep:
        print(f"logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    print(f"alias moved in MLflow -> rollout started ({args.moves} moves, pollSeconds {args.poll_seconds}):")
    for path, moves in results.items():
        print(f"  {path:8} {summary(moves)}   [{', '.join(f'{m.took:.2f}' for m in moves)}]")
        print(f"           median s after the alias call (+ the stage's own): {timeline(moves)}")
        if args.each:
            for move in moves:
                print("           " + timeline([move]))
    print(
        "load average (1, 5, 15 min) at start "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; at end "
        + ", ".join(f"{x:.2f}" for x in load_after)
        + f"; {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
