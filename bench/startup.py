"""Start-up time of each component (spawn to ready) and its peak memory under the 64-client load.

    PYTHONPATH=. BTC_DATA_CSV=... .venv/bin/python bench/startup.py [--repeat 3] [--clients 64] [--seconds 30]

Starts the stack of ``bench/load.py`` (MLflow with two registered versions, the predictor, the facade)
through the shared launchers (``btcforecast.devservers``), then the callback receiver and the operator
(``kopf run`` against the tests' Kubernetes API emulator, ready when its liveness endpoint answers),
timing each from spawn to its ready check answering: MLflow ``/health``, the predictor
``/v2/health/ready`` (a version loaded and warmed up), the facade and the receiver ``/health``, the
operator ``/healthz``. ``--repeat`` starts each component that many times in all: the first start
(MLflow creating its database, the predictor downloading its version) and restarts on the same
ports and state (median). Then it runs ``bench/load.py``'s load (half the clients on the facade,
half on the predictor, reloads every 5 s) and prints each process's VmHWM (peak RSS since start,
children included) with the load's own table. ``python -c pass`` and ``import torch`` are timed beside
them, since the machine is shared and those give the scale.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import torch

from bench import load
from btcforecast.devservers.components import receiver_process
from btcforecast.devservers.process import ManagedProcess, free_port
from btcforecast.market import generate_bars, read_csv

ROOT = Path(__file__).resolve().parents[1]
ORDER = ("mlflow", "predictor", "facade", "callback", "operator")


def interpreter_floor(repeat: int) -> dict[str, float]:
    """Seconds for ``python -c pass`` and ``python -c 'import torch'`` (median of ``repeat``)."""
    floors = {}
    for label, code in (("python -c pass", "pass"), ("python -c 'import torch'", "import torch")):
        times = []
        for _ in range(repeat):
            began = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times.append(time.perf_counter() - began)
        floors[label] = statistics.median(times)
    return floors


def start_operator(work: Path, tracking_uri: str, startup: dict[str, float]) -> ManagedProcess:
    """The operator (``kopf run``, the tests' launcher) against the tests' Kubernetes API emulator."""
    from tests.operator.cluster import operator_process
    from tests.operator.kube_emulator import EmulatorThread

    emulator = EmulatorThread(free_port(), crd=ROOT / "manifests" / "crd-modelaliases.yaml").start()
    kubeconfig = work / "kubeconfig"
    emulator.write_kubeconfig(kubeconfig)
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    operator = operator_process(kubeconfig, namespace, tracking_uri, work / "operator.log")
    return load.timed_start(operator, startup)


READY = {
    "mlflow": "/health",
    "predictor": "/v2/health/ready (version loaded, warm-up passed)",
    "facade": "/health",
    "callback": "/health",
    "operator": "kopf /healthz",
}


def print_startup(starts: dict[str, list[float]], floors: dict[str, float], repeat: int) -> None:
    print(
        f"\nstart-up, spawn to ready ({repeat} starts each; load average now "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)\n"
    )
    print("| component | ready when | first start s | restarts s (median) |")
    print("| --- | --- | ---: | ---: |")
    for name in ORDER:
        first_start, restarts = starts[name][0], starts[name][1:]
        again = f"{statistics.median(restarts):.1f}" if restarts else "-"
        print(f"| {name} | {READY[name]} | {first_start:.1f} | {again} |")
    for label, seconds in floors.items():
        print(f"| {label} (scale, median) | exit | | {seconds:.1f} |")
    print(flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="starts per component (median reported)")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the load runs")
    parser.add_argument("--reload-every", type=float, default=5.0)
    parser.add_argument("--csv", default=None, help="hourly bars (default BTC_DATA_CSV, else synthetic)")
    args = parser.parse_args(argv)
    args.csv = args.csv or os.environ.get("BTC_DATA_CSV")
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    bars = read_csv(args.csv) if args.csv else generate_bars()
    procs: dict[str, ManagedProcess] = {}
    starts: dict[str, list[float]] = {name: [] for name in ORDER}
    memory: dict[str, int] = {}
    code = 1
    try:
        first: dict[str, float] = {}
        versions = load.start_stack(work, bars, procs, first)
        procs["callback"] = load.timed_start(
            receiver_process(free_port(), {"STATE_DIR": str(work / "callback")}, work / "callback.log"), first
        )
        procs["operator"] = start_operator(work, procs["mlflow"].url, first)
        for name, seconds in first.items():
            starts[name].append(seconds)
        for _ in range(args.repeat - 1):
            for name in ORDER:
                procs[name].stop()
                again: dict[str, float] = {}
                load.timed_start(procs[name], again)
                starts[name].append(again[name])
        floors = interpreter_floor(args.repeat)
        print_startup(starts, floors, args.repeat)
        code = asyncio.run(load.run(args, procs, versions, bars, work, memory))
    finally:
        for p in reversed(list(procs.values())):
            p.stop()
    print(
        f"\npeak memory under the load (VmHWM since start, children included; load average now "
        f"{os.getloadavg()[0]:.1f})\n\n| component | VmHWM MiB |\n| --- | ---: |"
    )
    for name in ORDER:
        print(f"| {name} | {memory.get(name, 0) / 2**20:.0f} |")
    if code == 0:
        shutil.rmtree(work, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
