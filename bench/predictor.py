"""Predictor figures: KServe predictor vs a minimal FastAPI+uvicorn server with the same module.

Standalone: starts its own MLflow (temporary state), trains three quick models (BTC_DATA_CSV when
set, else synthetic bars), registers them, starts ``python -m predictor`` and the reference server
on loopback, then prints a table. Bounded loops; nothing leaves 127.0.0.1.

    .venv/bin/python bench/predictor.py
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import orjson
import pandas as pd
import torch
import uvicorn
from fastapi import FastAPI, Request

ROOT = Path(__file__).resolve().parents[1]
# This file is bench/predictor.py: its folder off the path, so that ``import predictor`` is the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
N_SEQUENTIAL = 300
N_CONCURRENT = 800
N_BIG = 20
N_ROUND = 100
MLFLOW_READY_TIMEOUT = 300.0  # a loaded 2-core machine can take minutes to start MLflow


def reference_app(model_dir: Path):
    """The reference: FastAPI, one route, the same module and inference path, JSON in and out.

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

    return app


def reference_server(port: int, model_dir: str) -> None:
    """The reference app served by uvicorn (its defaults, as KServe: uvloop and httptools)."""
    uvicorn.run(reference_app(Path(model_dir)), host="127.0.0.1", port=port, log_level="warning")


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


async def single_window_rounds(pred: str, ref: str, logged: str, one: np.ndarray, rounds: int) -> list[tuple]:
    """Single-window p50 of the predictor (v2, v1) and the reference, side by side in ``rounds`` rounds.

    Each round sends ``N_ROUND`` sequential requests to each server in turn, so both see the same
    machine; the rows give the median over rounds of each p50 and of the per-round ratio. ``logged``
    is the predictor with KServe's per-request log lines on (its defaults: latency line, timing
    middleware, uvicorn access log), to show what they cost.
    """
    v2_body, v1_body = v2_json(one), {"instances": one.tolist()}
    p50s: dict[str, list[float]] = {"v2": [], "v1": [], "logged": [], "ref": []}
    async with (
        httpx.AsyncClient(base_url=pred, timeout=60, trust_env=False) as p,
        httpx.AsyncClient(base_url=ref, timeout=60, trust_env=False) as r,
        httpx.AsyncClient(base_url=logged, timeout=60, trust_env=False) as g,
    ):
        sends = {
            "v2": (p, lambda c: c.post("/v2/models/btc-lstm/infer", json=v2_body)),
            "logged": (g, lambda c: c.post("/v2/models/btc-lstm/infer", json=v2_body)),
            "v1": (p, lambda c: c.post("/v1/models/btc-lstm:predict", json=v1_body)),
            "ref": (r, lambda c: c.post("/predict", json=v1_body)),
        }
        for _ in range(rounds):
            for key, (client, send) in sends.items():
                p50s[key].append((await timed(client, N_ROUND, 1, send))[0])
    med = {k: statistics.median(v) for k, v in p50s.items()}
    ratio = {
        k: statistics.median(a / b for a, b in zip(p50s[k], p50s["ref"], strict=True))
        for k in ("v2", "v1", "logged")
    }
    print(
        f"single window, concurrency 1, {rounds} rounds of {N_ROUND} requests: "
        f"v2 / reference p50 = {ratio['v2']:.2f}x (per round: "
        + ", ".join(f"{a / b:.2f}" for a, b in zip(p50s["v2"], p50s["ref"], strict=True))
        + f"), v1 / reference = {ratio['v1']:.2f}x, v2 with KServe's per-request logs on / reference = "
        f"{ratio['logged']:.2f}x",
        flush=True,
    )
    nan = float("nan")
    return [
        (f"1 window v2, conc. 1, rounds ({ratio['v2']:.2f}x ref)", "predictor", med["v2"], nan, 0.0),
        (f"1 window v1, conc. 1, rounds ({ratio['v1']:.2f}x ref)", "predictor", med["v1"], nan, 0.0),
        (f"1 window v2, logs on, rounds ({ratio['logged']:.2f}x ref)", "predictor", med["logged"], nan, 0.0),
        ("1 window, conc. 1, rounds", "reference", med["ref"], nan, 0.0),
    ]


# --- where the time goes: the two apps in-process, one request at a time, under cProfile ----------

PREDICTOR_LAYERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # (layer, whose, (function whose cumulative time it is, functions inside it it excludes))
    ("HTTP app: middleware, routing (FastAPI/Starlette, KServe's app)", "KServe", ("app", "infer")),
    ("route: headers, orjson body, Response", "ours", ("infer", "decode_v2", "DataPlane.infer", "encode")),
    ("decode_v2: JSON/binary body -> InferRequest", "ours", ("decode_v2",)),
    ("data plane + Model.__call__ (Prometheus histograms)", "KServe", ("DataPlane.infer", "predict")),
    (
        "predict: version, labels, InferResponse",
        "ours",
        ("predict", "windows_from_v2", "predict_quantiles", "v2_outputs"),
    ),
    ("validation: windows_from_v2", "ours", ("windows_from_v2",)),
    ("forward: predict_quantiles (same as the reference)", "shared", ("predict_quantiles",)),
    ("outputs: v2_outputs (KServe InferOutput)", "ours", ("v2_outputs",)),
    ("encode: InferResponse.to_rest", "KServe", ("encode",)),
)
REFERENCE_LAYERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("HTTP app: middleware, routing, JSON response (FastAPI)", "FastAPI", ("app", "predict_quantiles")),
    ("forward: predict_quantiles", "shared", ("predict_quantiles",)),
)
FUNCTIONS = {  # name -> (file suffix, function name) in cProfile's keys
    "app": ("fastapi/applications.py", "__call__"),
    "infer": ("predictor/routes.py", "infer"),
    "decode_v2": ("predictor/validation.py", "decode_v2"),
    "DataPlane.infer": ("kserve/protocol/dataplane.py", "infer"),
    "encode": ("kserve/protocol/dataplane.py", "encode"),
    "predict": ("predictor/model.py", "predict"),
    "windows_from_v2": ("predictor/validation.py", "windows_from_v2"),
    "predict_quantiles": ("btcforecast/model.py", "predict_quantiles"),
    "v2_outputs": ("predictor/contract.py", "v2_outputs"),
}


async def asgi_post(app, path: str, body: bytes) -> None:
    """One POST straight into an ASGI app (no socket, no client), checked for a 200."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    status: list[int] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    assert status == [200], status


def cumulative(stats: pstats.Stats, name: str) -> float:
    suffix, function = FUNCTIONS[name]
    return sum(
        row[3] for (file, _, func), row in stats.stats.items() if func == function and file.endswith(suffix)
    )


def layer_shares(stats: pstats.Stats, layers) -> list[tuple[str, str, float]]:
    """(layer, whose, share of the whole request) from cumulative times: a function minus those inside it."""
    total = cumulative(stats, "app")
    rows = []
    for label, whose, (outer, *inner) in layers:
        own = cumulative(stats, outer) - sum(cumulative(stats, i) for i in inner)
        rows.append((label, whose, own / total))
    return rows


async def profile_layers(pred_app, ref_app, one: np.ndarray, rounds: int) -> None:
    """Print, for each app, the in-process time per request and where it goes (cProfile, scaled).

    Plain timing (median of ``rounds`` interleaved rounds) gives each app's time per request without
    the socket, uvicorn and the client, which both servers pay alike; cProfile over as many requests
    again gives each layer's share, applied to the plain time (profiling slows Python code more than
    torch's C++, so the shares of Python layers are upper bounds).
    """
    v2 = orjson.dumps(v2_json(one))
    v1 = orjson.dumps({"instances": one.tolist()})
    apps = {"predictor": (pred_app, "/v2/models/btc-lstm/infer", v2), "reference": (ref_app, "/predict", v1)}
    for app, path, body in apps.values():
        for _ in range(50):
            await asgi_post(app, path, body)
    per_request: dict[str, list[float]] = {k: [] for k in apps}
    for _ in range(rounds):
        for key, (app, path, body) in apps.items():
            start = time.perf_counter()
            for _ in range(N_ROUND):
                await asgi_post(app, path, body)
            per_request[key].append((time.perf_counter() - start) / N_ROUND * 1e6)
    us = {k: statistics.median(v) for k, v in per_request.items()}
    ratio = statistics.median(
        a / b for a, b in zip(per_request["predictor"], per_request["reference"], strict=True)
    )
    shares = {}
    for key, layers in (("predictor", PREDICTOR_LAYERS), ("reference", REFERENCE_LAYERS)):
        app, path, body = apps[key]
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(N_ROUND * rounds):
            await asgi_post(app, path, body)
        profiler.disable()
        shares[key] = layer_shares(pstats.Stats(profiler), layers)
    print(
        f"\nin-process (ASGI call, no socket): predictor v2 {us['predictor']:.0f} us, reference "
        f"{us['reference']:.0f} us per single-window request, ratio {ratio:.2f}x (median of {rounds} rounds)"
    )
    print(f"\n| {'layer (cProfile share x in-process time)':66} | {'whose':7} | {'share':>6} | {'us':>6} |")
    print(f"|{'-' * 68}|{'-' * 9}|{'-' * 8}|{'-' * 8}|")
    by_whose: dict[str, float] = {}
    for key in ("predictor", "reference"):
        for label, whose, share in shares[key]:
            print(f"| {key + ': ' + label:66} | {whose:7} | {share:6.1%} | {share * us[key]:6.0f} |")
            if key == "predictor":
                by_whose[whose] = by_whose.get(whose, 0.0) + share * us[key]
    print(
        "\npredictor in-process by owner: "
        + ", ".join(f"{whose} {t:.0f} us" for whose, t in by_whose.items())
        + f"; reference {us['reference']:.0f} us, of which its FastAPI layer "
        f"{shares['reference'][0][2] * us['reference']:.0f} us"
    )


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


def in_process_predictor(tracking_uri: str, state: Path):
    """The predictor's complete REST app in this process (KServe's global app), its live version loaded."""
    from predictor.model import ForecastModel
    from predictor.server import PredictorServer
    from predictor.settings import PredictorSettings

    settings = PredictorSettings(mlflow_tracking_uri=tracking_uri, model_name="btc-lstm", state_dir=state)
    model = ForecastModel("btc-lstm", settings)
    app = PredictorServer(model, http_port=0, enable_latency_logging=False).asgi_app()
    model.load()
    return app


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--reference-server":
        reference_server(int(sys.argv[2]), sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="side-by-side rounds of single-window requests")
    parser.add_argument(
        "--single-window", action="store_true", help="only the single-window rounds and the layer profile"
    )
    args = parser.parse_args()
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
        with mlflow_server(tmp / "mlflow", ready_timeout=MLFLOW_READY_TIMEOUT) as mlflow:
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
            pport, rport, lport = free_port(), free_port(), free_port()
            env = {
                "MLFLOW_TRACKING_URI": mlflow.url,
                "STATE_DIR": str(tmp / "state"),
                "MODEL_NAME": "btc-lstm",
            }
            pred = predictor_process(
                pport, env, tmp / "predictor.log", ready_path="/v2/models/btc-lstm/ready", cwd=ROOT
            )
            logged = predictor_process(
                lport,
                {**env, "ACCESS_LOG": "true"},
                tmp / "predictor-logged.log",
                ready_path="/v2/models/btc-lstm/ready",
                extra_args=["--enable_latency_logging", "true"],
                cwd=ROOT,
            )
            ref = ManagedProcess(
                "reference",
                [sys.executable, __file__, "--reference-server", str(rport), str(model_dir)],
                cwd=ROOT,
                log_path=tmp / "reference.log",
                ready_port=rport,
            )
            with pred, ref, logged:
                httpx.get(f"{pred.url}/v2/health/ready", timeout=5)
                rows = asyncio.run(
                    single_window_rounds(pred.url, ref.url, logged.url, windows[:1], args.rounds)
                )
                if not args.single_window:
                    rows += asyncio.run(measure(pred.url, ref.url, windows, versions[1], versions[0]))
            pred_app = in_process_predictor(mlflow.url, tmp / "inprocess")
            asyncio.run(profile_layers(pred_app, reference_app(model_dir), windows[:1], args.rounds))
            from btcforecast.model import load_model

            if not args.single_window:
                rows += forward_figures(load_model(model_dir)[0], windows)
    print(
        f"\nbtc-forecast predictor bench ({'real' if csv else 'synthetic'} data, "
        f"predictor torch threads {os.environ.get('TORCH_THREADS', '1')}, bare forward 1 thread, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, loopback)\n"
    )
    print(f"| {'case':42} | {'server':9} | {'p50 ms':>8} | {'p99 ms':>8} | {'req/s':>7} |")
    print(f"|{'-' * 44}|{'-' * 11}|{'-' * 10}|{'-' * 10}|{'-' * 9}|")
    for case, server, p50, p99, rps in rows:
        print(f"| {case:42} | {server:9} | {p50:8.2f} | {p99:8.2f} | {rps:7.0f} |")


if __name__ == "__main__":
    main()
