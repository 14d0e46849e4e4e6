"""Where an uncached /predict spends its time (issue 13 goal 1: "loaded, not cached <= 2x the bare forward").

Usage: BTC_DATA_CSV=/work/shared/data/btc_usd_1h.csv PYTHONPATH=. .venv/bin/python \
    bench/predict_stages.py [--repeat 31]

Starts its own MLflow (one quick model, alias 20250327) and `python -m predictor`, then serves the
facade app in this process (uvicorn on a free loopback port, ``RESULT_CACHE_SIZE=0``) with timers
wrapped around its stages, and times `POST /predict?alias=20250327` (3,048 hours) over HTTP. Printed
beside it, in the same run: the same windows sent straight to the predictor, and the bare batched
forward on one torch thread (the predictor's setting). The stage timers are wrappers around the
facade's own functions; they add a few microseconds each.
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import torch
import uvicorn

from btcforecast import registry
from btcforecast.devservers.components import predictor_process
from btcforecast.devservers.mlflow_server import mlflow_server
from btcforecast.devservers.process import ManagedProcess, free_port
from btcforecast.features import WINDOW, compute_features, windows_for_range
from btcforecast.market import LocalParquetStore, generate_bars, read_csv
from btcforecast.model import load_model, predict_quantiles
from btcforecast.training import TrainingParams, train_for_base_date

MODEL = "btc-lstm"
DAY = date(2025, 3, 27)
STAGES: dict[str, list[float]] = collections.defaultdict(list)


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(fn, "__code__", None) and fn.__code__.co_flags & 0x80:  # a coroutine function

        @functools.wraps(fn)
        async def wrapped_async(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                STAGES[name].append(time.perf_counter() - t0)

        return wrapped_async

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            STAGES[name].append(time.perf_counter() - t0)

    return wrapped


def instrument() -> None:
    """Timers around the facade's stages (module attributes, as the facade looks them up)."""
    here = Path(__file__).parent.resolve()
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]  # bench/facade.py hides facade
    import facade.api.routes.predict as routes
    import facade.forecasts as forecasts
    import facade.predictor_client as client

    forecasts.windows_for_range = timed("windows (facade)", forecasts.windows_for_range)
    forecasts.backtest_report = timed("backtest report (worker thread)", forecasts.backtest_report)
    client.encode_infer_request = timed("encode the binary request", client.encode_infer_request)
    client._decode = timed("decode the answer", client._decode)
    client.PredictorClient._infer = timed("predictor round trip (HTTP)", client.PredictorClient._infer)
    predict = forecasts.Forecaster.predict
    forecasts.Forecaster.predict = timed("Forecaster.predict (all of the above)", predict)
    routes.forecast_response = timed("JSON body (3,048 rows)", routes.forecast_response)


def p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=31)
    args = parser.parse_args()
    csv = os.environ.get("BTC_DATA_CSV")
    bars = read_csv(csv) if csv else generate_bars()
    work = Path(tempfile.mkdtemp(prefix="bench-stages-"))
    market = work / "market.parquet"
    LocalParquetStore(market).write(bars)
    procs: list[ManagedProcess] = []
    try:
        ml = mlflow_server(work / "mlflow", ready_timeout=300).start()
        procs.append(ml)
        client = registry.connect(ml.url)
        trained = train_for_base_date(bars, DAY, TrainingParams(epochs=3, patience=2))
        version = registry.register(client, MODEL, trained, alias=DAY.strftime("%Y%m%d"))
        registry.set_alias(client, MODEL, "production", version)
        env = {"MLFLOW_TRACKING_URI": ml.url, "MODEL_NAME": MODEL, "STATE_DIR": str(work / "p")}
        pred = predictor_process(free_port(), env, work / "predictor.log", ready_timeout=300)
        procs.append(pred.start())
        os.environ.update(
            {
                **env,
                "PREDICTOR_URL": pred.url,
                "MARKET_DATA_URI": str(market),
                "STATE_DIR": str(work / "f"),
                "RESULT_CACHE_SIZE": "0",
            }
        )
        instrument()
        from facade.main import create_app
        from facade.predictor_client import HEADER_LENGTH, encode_infer_request

        server = uvicorn.Server(
            uvicorn.Config(create_app(), host="127.0.0.1", port=free_port(), log_level="warning")
        )
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{server.config.port}"
        with httpx.Client(base_url=url, timeout=60, trust_env=False) as http:
            for _ in range(3):
                http.post("/predict", params={"alias": "20250327"}).raise_for_status()
            STAGES.clear()
            total = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                http.post("/predict", params={"alias": "20250327"}).raise_for_status()
                total.append(time.perf_counter() - t0)
        windows, _ = windows_for_range(compute_features(bars), pd.Timestamp(DAY, tz="UTC"), None, WINDOW)
        body, length = encode_infer_request(windows)
        headers = {HEADER_LENGTH: str(length), "Content-Type": "application/octet-stream"}
        direct = []
        with httpx.Client(timeout=60, trust_env=False) as http:
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                infer = f"{pred.url}/v2/models/{MODEL}/versions/{version}/infer"
                http.post(infer, content=body, headers=headers).raise_for_status()
                direct.append(time.perf_counter() - t0)
        torch.set_num_threads(1)
        ref = registry.resolve(client, MODEL, version=version)
        model, _ = load_model(registry.download_serving_files(client, ref, work / "cache"))
        forward = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            predict_quantiles(model, windows)
            forward.append(time.perf_counter() - t0)
        server.should_exit = True
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"\n{len(windows)} windows ({body.__len__() / 1e6:.2f} MB request), load average {load}\n")
        print("| what | p50 ms |\n| --- | ---: |")
        print(f"| `POST /predict?alias=20250327`, not cached, over HTTP | {p50(total):.1f} |")
        for name, samples in STAGES.items():
            print(f"| - {name} | {p50(samples):.2f} |")
        print(f"| the same windows straight to the predictor (HTTP, kept connection) | {p50(direct):.1f} |")
        print(f"| bare batched forward, one torch thread | {p50(forward):.1f} |")
        print(f"\nratio to the bare forward: {p50(total) / p50(forward):.2f}x")
    finally:
        for proc in reversed(procs):
            proc.stop()


if __name__ == "__main__":
    main()
