"""Predictor figures: KServe predictor vs a minimal FastAPI+uvicorn server with the same module.

Standalone: starts its own MLflow (temporary state), trains three quick models (BTC_DATA_CSV when
set, else synthetic bars), registers them, starts ``python -m predictor`` and the reference server
on loopback, then prints a table. Bounded loops; nothing leaves 127.0.0.1.

    .venv/bin/python bench/predictor.py
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import torch
import uvicorn
from fastapi import FastAPI, Request

ROOT = Path(__file__).resolve().parents[1]
N_SEQUENTIAL = 300
N_CONCURRENT = 800
N_BIG = 20


def reference_server(port: int, model_dir: str) -> None:
    """The reference: FastAPI + uvicorn, one route, the same module and inference path, JSON in and out.

    It answers what the predictor's v1 answers (the median as ``predictions``, the other quantiles
    beside it) without validation, warm-up or version handling.
    """
    from btcforecast.model import load_model, predict_quantiles

    torch.set_num_threads(1)
    model, config = load_model(Path(model_dir))
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request) -> dict:
        body = json.loads(await request.body())
        quantiles = predict_quantiles(model, np.asarray(body["instances"], dtype=np.float32))
        return {
            ("predictions" if i == config.point_index else name): quantiles[:, i].tolist()
            for i, name in enumerate(config.output_names)
        }

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


async def timed(client: httpx.AsyncClient, n: int, concurrency: int, send) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, requests/s) of ``n`` requests from ``concurrency`` workers."""
    latencies: list[float] = []

    async def worker(count: int) -> None:
        for _ in range(count):
            start = time.perf_counter()
            response = await send(client)
            latencies.append(time.perf_counter() - start)
            assert response.status_code == 200, response.text

    await send(client)  # warm
    start = time.perf_counter()
    await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
    wall = time.perf_counter() - start
    return pct(latencies, 50), pct(latencies, 99), len(latencies) / wall


def v2_json(windows: np.ndarray) -> dict:
    return {
        "inputs": [
            {
                "name": "windows",
                "shape": list(windows.shape),
                "datatype": "FP32",
                "data": windows.ravel().tolist(),
            }
        ]
    }


def v2_binary(windows: np.ndarray) -> tuple[bytes, dict]:
    raw = np.ascontiguousarray(windows, "<f4").tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "windows",
                    "shape": list(windows.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    return header + raw, {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(header)),
    }


async def measure(
    pred: str, ref: str, windows: np.ndarray, reload_version: str, back_version: str
) -> list[tuple]:
    rows: list[tuple] = []
    one = windows[:1]
    v1_body = {"instances": one.tolist()}
    v2_body = v2_json(one)
    limits = httpx.Limits(max_connections=32)
    async with (
        httpx.AsyncClient(base_url=pred, timeout=60, limits=limits, trust_env=False) as p,
        httpx.AsyncClient(base_url=ref, timeout=60, limits=limits, trust_env=False) as r,
    ):
        for conc, n in ((1, N_SEQUENTIAL), (16, N_CONCURRENT)):
            rows.append(
                (
                    f"1 window v1, concurrency {conc}",
                    "predictor",
                    *await timed(p, n, conc, lambda c: c.post("/v1/models/btc-lstm:predict", json=v1_body)),
                )
            )
            rows.append(
                (
                    f"1 window v2, concurrency {conc}",
                    "predictor",
                    *await timed(p, n, conc, lambda c: c.post("/v2/models/btc-lstm/infer", json=v2_body)),
                )
            )
            rows.append(
                (
                    f"1 window, concurrency {conc}",
                    "reference",
                    *await timed(r, n, conc, lambda c: c.post("/predict", json=v1_body)),
                )
            )
        big = windows[:3048]
        big_json, (big_bin, big_headers) = v2_json(big), v2_binary(big)
        rows.append(
            (
                f"{len(big)} windows v2 JSON",
                "predictor",
                *await timed(p, N_BIG, 1, lambda c: c.post("/v2/models/btc-lstm/infer", json=big_json)),
            )
        )
        rows.append(
            (
                f"{len(big)} windows v2 binary",
                "predictor",
                *await timed(
                    p,
                    N_BIG,
                    1,
                    lambda c: c.post("/v2/models/btc-lstm/infer", content=big_bin, headers=big_headers),
                ),
            )
        )
        rows.append(
            (
                f"{len(big)} windows v1 JSON",
                "predictor",
                *await timed(
                    p,
                    N_BIG,
                    1,
                    lambda c: c.post("/v1/models/btc-lstm:predict", json={"instances": big.tolist()}),
                ),
            )
        )
        rows.append(
            (
                f"{len(big)} windows JSON",
                "reference",
                *await timed(r, N_BIG, 1, lambda c: c.post("/predict", json={"instances": big.tolist()})),
            )
        )
        for label, version in (
            ("reload, uncached version, files local", reload_version),
            ("reload, cached version", back_version),
        ):
            start = time.perf_counter()
            response = await p.post("/v2/models/btc-lstm/reload", params={"version": version})
            elapsed = (time.perf_counter() - start) * 1000  # includes the warm-up check of a new version
            assert response.status_code == 200 and response.json()["was_cached"] == ("uncached" not in label)
            rows.append((label, "predictor", elapsed, elapsed, 0.0))
    return rows


def forward_figures(model: torch.nn.Module, windows: np.ndarray) -> list[tuple]:
    """Would batching concurrent single-window requests help? Cost of 16 forwards of 1 vs one of 16.

    Timed through ``predict_quantiles`` (the predictor's inference path, [N, Q] out).
    """
    from btcforecast.model import predict_quantiles

    torch.set_num_threads(1)
    rows = []
    for n in (1, 16, 3048):
        x = np.ascontiguousarray(windows[:n])
        times = []
        predict_quantiles(model, x)
        for _ in range(50 if n < 1000 else 10):
            start = time.perf_counter()
            predict_quantiles(model, x)
            times.append(time.perf_counter() - start)
        rows.append((f"bare forward, {n} window(s)", "torch", pct(times, 50), pct(times, 99), 0.0))
    return rows


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--reference-server":
        reference_server(int(sys.argv[2]), sys.argv[3])
        return
    from btcforecast import registry
    from btcforecast.devservers.components import predictor_process
    from btcforecast.devservers.mlflow_server import mlflow_server
    from btcforecast.devservers.process import ManagedProcess, free_port
    from btcforecast.features import compute_features, history_start, windows_for_range
    from btcforecast.market import generate_bars, read_csv
    from btcforecast.training import TrainingParams, train_for_base_date

    csv = os.environ.get("BTC_DATA_CSV")
    bars = read_csv(csv) if csv and Path(csv).is_file() else generate_bars()
    start = pd.Timestamp("2025-03-27", tz="UTC")
    features = compute_features(bars.loc[history_start(start) - pd.Timedelta(hours=48) :])
    windows, _ = windows_for_range(features, start, start + pd.Timedelta(hours=3047))
    with tempfile.TemporaryDirectory(prefix="bench-predictor-") as tmp_dir:
        tmp = Path(tmp_dir)
        with mlflow_server(tmp / "mlflow") as mlflow:
            client = registry.connect(mlflow.url)
            params = TrainingParams(train_days=30, epochs=3, patience=2)
            versions = [
                registry.register(client, "btc-lstm", train_for_base_date(bars, day, params))
                for day in (date(2025, 3, 20), date(2025, 3, 27), date(2025, 4, 3))
            ]
            registry.set_alias(client, "btc-lstm", "production", versions[0])
            for v in versions:  # files local, so the reload figure is load + swap, not download
                registry.download_version(
                    client, registry.resolve(client, "btc-lstm", version=v), tmp / "state" / "models"
                )
            model_dir = tmp / "state" / "models" / "btc-lstm" / versions[0]
            pport, rport = free_port(), free_port()
            env = {
                "MLFLOW_TRACKING_URI": mlflow.url,
                "STATE_DIR": str(tmp / "state"),
                "MODEL_NAME": "btc-lstm",
            }
            pred = predictor_process(
                pport,
                env,
                tmp / "predictor.log",
                ready_path="/v2/models/btc-lstm/ready",
                extra_args=["--enable_latency_logging", "false"],
                cwd=ROOT,
            )
            ref = ManagedProcess(
                "reference",
                [sys.executable, __file__, "--reference-server", str(rport), str(model_dir)],
                cwd=ROOT,
                log_path=tmp / "reference.log",
                ready_port=rport,
            )
            with pred, ref:
                httpx.get(f"{pred.url}/v2/health/ready", timeout=5)
                rows = asyncio.run(measure(pred.url, ref.url, windows, versions[1], versions[0]))
            from btcforecast.model import load_model

            rows += forward_figures(load_model(model_dir)[0], windows)
    print(
        f"\nbtc-forecast predictor bench ({'real' if csv else 'synthetic'} data, "
        f"predictor torch threads {os.environ.get('TORCH_THREADS', '1')}, bare forward 1 thread, "
        f"{os.cpu_count()} cores, loopback)\n"
    )
    print(f"| {'case':42} | {'server':9} | {'p50 ms':>8} | {'p99 ms':>8} | {'req/s':>7} |")
    print(f"|{'-' * 44}|{'-' * 11}|{'-' * 10}|{'-' * 10}|{'-' * 9}|")
    for case, server, p50, p99, rps in rows:
        print(f"| {case:42} | {server:9} | {p50:8.2f} | {p99:8.2f} | {rps:7.0f} |")


if __name__ == "__main__":
    main()
