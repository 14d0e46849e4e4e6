"""Load during reloads: concurrent clients on the facade's /predict and the predictor's v2 infer while
the live alias flips between two versions every few seconds.

Usage: .venv/bin/python bench/load.py [--clients 64] [--seconds 60] [--reload-every 5]
(``BTC_DATA_CSV`` set: real bars; else synthetic.)

Starts its own MLflow, trains and registers two quick models, starts `python -m predictor` and
`python -m facade` on free loopback ports (nothing leaves 127.0.0.1). Half the clients POST
``/predict`` (alias ``production``, one day, result cache off so every answer goes through MLflow and
the predictor), half POST v2 infer to the predictor's live model. Every ``--reload-every`` seconds
the MLflow alias ``production`` moves to the other version and the live model is reloaded, in turn
through the facade's ``/reload`` and the predictor's reload endpoint. Each answer is checked against
the outputs of the version it names, computed here from the same registered files: an answer mixing
versions, or labelled with one version and carrying another's numbers, counts as mixed. Prints
requests served, p50/p99 latency per target, the peak memory of each process (RSS sampled every
0.5 s, and the kernel's high-water mark VmHWM, children included) and exits non-zero on any failed,
5xx or mixed answer. ``bench/startup.py`` starts the same stack (plus the receiver and the operator),
timing each start, and runs this load on it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psutil
import torch

from btcforecast import registry
from btcforecast.alias_names import backtest_alias
from btcforecast.devservers.components import facade_process, predictor_process
from btcforecast.devservers.mlflow_server import mlflow_server
from btcforecast.devservers.process import ManagedProcess, free_port
from btcforecast.features import WINDOW, compute_features, windows_for_range
from btcforecast.market import LocalParquetStore, generate_bars, read_csv
from btcforecast.training import TrainingParams, train_for_base_date

MODEL = "btc-lstm"
ALIAS = "production"
BASE_DATES = (date(2025, 3, 27), date(2025, 4, 3))
RANGE = ("2025-04-10", "2025-04-10")  # one day: 24 predictions per /predict answer
API_TOKEN = "bench-api-token"
RELOAD_TOKEN = "bench-reload-token"
INFER_WINDOWS = 8
SAMPLE_EVERY = 0.5
MLFLOW_READY_TIMEOUT = 300.0  # a loaded 2-core machine can take minutes to start MLflow


@dataclass
class Tally:
    """What one target's clients saw."""

    latencies: list[float] = field(default_factory=list)
    failed: int = 0  # transport errors and non-200 answers
    status_5xx: int = 0
    mixed: int = 0  # an answer not wholly from the one version it names
    by_version: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def fail(self, why: str) -> None:
        self.failed += 1
        if len(self.errors) < 5:
            self.errors.append(why)

    def ok(self, seconds: float, version: str) -> None:
        self.latencies.append(seconds)
        self.by_version[version] = self.by_version.get(version, 0) + 1


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    return float(np.percentile(np.asarray(samples), q)) * 1000


def process_tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants (MLflow forks workers); none once it has gone."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_rss(pid: int) -> int:
    """RSS of a process and all its descendants."""
    total = 0
    for p in process_tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


def vm_hwm(pid: int) -> int:
    """Peak RSS in bytes since the process started (VmHWM), summed over the process and its descendants.

    Summed high-water marks of several processes bound the tree's peak from above (they need not
    coincide); MLflow is the only tree here with more than one process.
    """
    total = 0
    for p in process_tree(pid):
        with contextlib.suppress(OSError, psutil.NoSuchProcess, StopIteration):
            status = Path(f"/proc/{p.pid}/status").read_text()
            kib = next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]
            total += int(kib) * 1024
    return total


def timed_start(process: ManagedProcess, startup: dict[str, float]) -> ManagedProcess:
    """Start ``process`` and record seconds from spawning it to its ready check answering."""
    began = time.perf_counter()
    process.start()
    startup[process.name] = time.perf_counter() - began
    return process


async def sample_memory(pids: dict[str, int], peaks: dict[str, int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for name, pid in pids.items():
            peaks[name] = max(peaks.get(name, 0), tree_rss(pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY)


async def client(
    who: str,
    send: Callable[[], Awaitable[httpx.Response]],
    version_of: Callable[[dict[str, Any]], str | None],
    deadline: float,
    tally: Tally,
) -> None:
    """Send until ``deadline``, one request at a time, and count each answer in ``tally``.

    A transport error or a non-200 answer is a failure (a 5xx is counted as well); a 200 is checked by
    ``version_of``: the version it wholly comes from, or None (mixed).
    """
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            response = await send()
        except httpx.HTTPError as e:
            tally.fail(f"{who}: {type(e).__name__}: {e}")
            continue
        elapsed = time.perf_counter() - t0
        if response.status_code >= 500:
            tally.status_5xx += 1
        if response.status_code != 200:
            tally.fail(f"{who} {response.status_code}: {response.text[:200]}")
            continue
        version = version_of(response.json())
        if version is None:
            tally.mixed += 1
        else:
            tally.ok(elapsed, version)


def predict_version(expected: dict[str, np.ndarray], hours: list[str], doc: dict[str, Any]) -> str | None:
    """The version a /predict answer names, if every prediction is that version's; else None."""
    version = doc["model_version"]
    items = doc["predictions"]
    got = np.array([p["prediction"] for p in items])
    if (
        version not in expected
        or {p["model_version"] for p in items} != {version}
        or [p["datetime"] for p in items] != hours
        or not np.allclose(got, expected[version], rtol=0, atol=0.011)
    ):
        return None
    return version


def infer_version(expected: dict[str, np.ndarray], doc: dict[str, Any]) -> str | None:
    """The version a v2 infer answer names, if its outputs are that version's; else None."""
    version = str(doc.get("model_version"))
    got = np.asarray(doc["outputs"][0]["data"], dtype=np.float32)
    if version not in expected or not np.allclose(got, expected[version], rtol=1e-5, atol=1e-3):
        return None
    return version


async def reloader(
    facade: httpx.AsyncClient,
    predictor: httpx.AsyncClient,
    mlflow_uri: str,
    versions: list[str],
    deadline: float,
    every: float,
    log: list[str],
    durations: list[float],
) -> int:
    """Flip ``production`` between the versions; odd flips through the facade, even through the predictor."""
    client = registry.connect(mlflow_uri)
    flips = 0
    next_at = time.monotonic() + every
    while next_at < deadline:  # on a fixed clock: a slow reload does not stretch the period
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        next_at += every
        target = versions[(flips + 1) % 2]
        started = time.monotonic()
        await asyncio.to_thread(registry.set_alias, client, MODEL, ALIAS, target)
        if flips % 2 == 0:
            response = await facade.post(
                "/reload", params={"alias": ALIAS}, headers={"Authorization": f"Bearer {API_TOKEN}"}
            )
        else:
            response = await predictor.post(
                f"/v2/models/{MODEL}/reload",
                params={"alias": ALIAS},
                headers={"Authorization": f"Bearer {RELOAD_TOKEN}"},
            )
        got = response.json().get("model_version") if response.status_code == 200 else None
        durations.append(time.monotonic() - started)
        if got != target:
            log.append(
                f"reload {flips + 1}: wanted {target}, got {response.status_code} {response.text[:200]}"
            )
        flips += 1
    return flips


def start_stack(
    work: Path, bars: pd.DataFrame, procs: dict[str, ManagedProcess], startup: dict[str, float] | None = None
) -> list[str]:
    """Start MLflow (two registered versions), the predictor and the facade into ``procs``.

    ``startup`` receives each one's seconds from spawn to ready (the predictor's ready: a version live).
    """
    startup = {} if startup is None else startup
    market = work / "market.parquet"
    LocalParquetStore(market).write(bars)
    procs["mlflow"] = timed_start(mlflow_server(work / "mlflow", ready_timeout=MLFLOW_READY_TIMEOUT), startup)
    uri = procs["mlflow"].url
    client = registry.connect(uri)
    t0 = time.perf_counter()
    params = TrainingParams(train_days=30, epochs=3, patience=2)
    versions = [
        registry.register(client, MODEL, train_for_base_date(bars, d, params), alias=backtest_alias(d))
        for d in BASE_DATES
    ]
    registry.set_alias(client, MODEL, ALIAS, versions[0])
    print(f"trained and registered versions {versions} in {time.perf_counter() - t0:.0f} s", flush=True)
    env = {
        "MLFLOW_TRACKING_URI": uri,
        "MODEL_NAME": MODEL,
        "MODEL_ALIAS": ALIAS,
        "STATE_DIR": str(work / "predictor"),
        "RELOAD_TOKEN": RELOAD_TOKEN,
    }
    port = free_port()
    procs["predictor"] = timed_start(predictor_process(port, env, work / "predictor.log"), startup)
    port = free_port()
    facade_env = {
        **env,
        "PREDICTOR_URL": procs["predictor"].url,
        "MARKET_DATA_URI": str(market),
        "STATE_DIR": str(work / "facade"),
        "API_TOKEN": API_TOKEN,
        "RESULT_CACHE_SIZE": "0",
    }
    procs["facade"] = timed_start(facade_process(port, facade_env, work / "facade.log"), startup)
    return versions


def references(
    uri: str, versions: list[str], bars: pd.DataFrame, cache: Path
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray], list[str]]:
    """(infer windows, version -> infer outputs, version -> /predict predictions, predicted hours)."""
    client = registry.connect(uri)
    features = compute_features(bars)
    start = pd.Timestamp(RANGE[0], tz="UTC")
    end = pd.Timestamp(RANGE[1], tz="UTC") + pd.Timedelta(hours=23)
    windows, hours = windows_for_range(features, start, end, WINDOW)
    infer_windows = windows[:INFER_WINDOWS]
    infer, predict = {}, {}
    for v in versions:
        loaded = registry.load_version(client, registry.resolve(client, MODEL, version=v), cache)
        point = loaded.config.point_index  # the median: v2's first output and /predict's "prediction"
        with torch.inference_mode():
            infer[v] = loaded.model(torch.from_numpy(np.ascontiguousarray(infer_windows))).numpy()[:, point]
            predict[v] = np.round(
                loaded.model(torch.from_numpy(windows)).numpy()[:, point].astype(np.float64), 2
            )
    gap = float(np.abs(predict[versions[0]] - predict[versions[1]]).max())
    if gap < 0.05:
        raise SystemExit(f"the two versions predict nearly the same ({gap:.3f} USD): mixing would go unseen")
    return infer_windows, infer, predict, list(hours.strftime("%Y-%m-%dT%H:%M:%S"))


async def run(
    args: argparse.Namespace,
    procs: dict[str, ManagedProcess],
    versions: list[str],
    bars: pd.DataFrame,
    work: Path,
    memory: dict[str, int] | None = None,
) -> int:
    """Run the clients and the reloader; print the tables; ``memory`` receives each process's VmHWM."""
    windows, infer_ref, predict_ref, hours = references(procs["mlflow"].url, versions, bars, work / "ref")
    content = json.dumps(
        {
            "inputs": [
                {
                    "name": "windows",
                    "shape": list(windows.shape),
                    "datatype": "FP32",
                    "data": windows.ravel().tolist(),
                }
            ]
        }
    ).encode()
    json_content = {"Content-Type": "application/json"}
    predict_body = {"alias": ALIAS, "start": RANGE[0], "end": RANGE[1]}
    n_facade = args.clients // 2
    n_predictor = args.clients - n_facade
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    timeout = httpx.Timeout(60.0, connect=5.0)
    facade_tally, predictor_tally = Tally(), Tally()
    peaks: dict[str, int] = {}
    pids = {name: p.pid for name, p in procs.items() if p.pid is not None}
    pids["bench client"] = os.getpid()
    stop = asyncio.Event()
    reload_log: list[str] = []
    reload_times: list[float] = []
    async with (
        httpx.AsyncClient(
            base_url=procs["facade"].url, limits=limits, timeout=timeout, trust_env=False
        ) as fa,
        httpx.AsyncClient(
            base_url=procs["predictor"].url, limits=limits, timeout=timeout, trust_env=False
        ) as pr,
    ):
        sampler = asyncio.create_task(sample_memory(pids, peaks, stop))
        started = time.monotonic()
        deadline = started + args.seconds
        predict = partial(fa.post, "/predict", json=predict_body)
        infer = partial(pr.post, f"/v2/models/{MODEL}/infer", content=content, headers=json_content)
        predicted, inferred = partial(predict_version, predict_ref, hours), partial(infer_version, infer_ref)
        flips, *_ = await asyncio.gather(
            reloader(
                fa, pr, procs["mlflow"].url, versions, deadline, args.reload_every, reload_log, reload_times
            ),
            *(client("facade", predict, predicted, deadline, facade_tally) for _ in range(n_facade)),
            *(client("predictor", infer, inferred, deadline, predictor_tally) for _ in range(n_predictor)),
        )
        elapsed = time.monotonic() - started
        stop.set()
        await sampler
    hwm = {name: vm_hwm(pid) for name, pid in pids.items()}
    if memory is not None:
        memory.update(hwm)

    print(
        f"\n{args.clients} clients ({n_facade} facade, {n_predictor} predictor) for {elapsed:.0f} s, "
        f"{flips} reloads every {args.reload_every:g} s between versions {versions} "
        f"(alias move + reload took p50 {percentile(reload_times, 50):.0f} ms, "
        f"max {max(reload_times, default=0) * 1000:.0f} ms)"
    )
    print(
        "\n| target | requests served | req/s | p50 ms | p99 ms | failed | 5xx | mixed | answers by version |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, t in (
        ("facade POST /predict (1 day, 24 predictions)", facade_tally),
        (f"predictor v2 infer ({INFER_WINDOWS} windows, JSON)", predictor_tally),
    ):
        served = len(t.latencies)
        by_version = ", ".join(f"v{v}: {n}" for v, n in sorted(t.by_version.items()))
        print(
            f"| {name} | {served} | {served / elapsed:.0f} | {percentile(t.latencies, 50):.1f} | "
            f"{percentile(t.latencies, 99):.1f} | {t.failed} | {t.status_5xx} | {t.mixed} | {by_version} |"
        )
    print("\n| process | peak RSS sampled MiB | VmHWM MiB (since start) |\n| --- | ---: | ---: |")
    for name, peak in peaks.items():
        print(f"| {name} | {peak / 2**20:.0f} | {hwm.get(name, 0) / 2**20:.0f} |")
    problems = [*facade_tally.errors, *predictor_tally.errors, *reload_log]
    for line in problems:
        print(f"problem: {line}")
    bad = sum(t.failed + t.status_5xx + t.mixed for t in (facade_tally, predictor_tally)) + len(reload_log)
    if min(len(t.by_version) for t in (facade_tally, predictor_tally)) < 2 and flips:
        print("problem: a target never saw both versions (the reloads did not reach it)")
        bad += 1
    print("\nresult:", "PASS" if bad == 0 else f"FAIL ({bad} problems)")
    return 0 if bad == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients, split between targets")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the clients run")
    parser.add_argument("--reload-every", type=float, default=5.0, help="seconds between reloads")
    parser.add_argument("--csv", default=os.environ.get("BTC_DATA_CSV"), help="hourly bars (else synthetic)")
    args = parser.parse_args(argv)
    if args.clients < 2:
        parser.error("--clients must be at least 2 (one per target)")
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    bars = read_csv(args.csv) if args.csv else generate_bars()
    print(f"data: {bars.attrs.get('source')}, {len(bars)} bars; work dir {work}", flush=True)
    procs: dict[str, ManagedProcess] = {}
    code = 1
    try:
        versions = start_stack(work, bars, procs)
        code = asyncio.run(run(args, procs, versions, bars, work))
        return code
    finally:
        for p in reversed(list(procs.values())):
            p.stop()
        if code == 0:
            shutil.rmtree(work, ignore_errors=True)  # kept on failure: the logs are in it


if __name__ == "__main__":
    sys.exit(main())
