"""Facade figures (issue 13 goals 1 and 2), each printed beside its reference from the same run.

Usage: BTC_DATA_CSV=/work/shared/data/btc_usd_1h.csv .venv/bin/python bench/facade.py [--repeat 21]

Starts its own MLflow, trains and registers quick weekly backtest models (20250327, 20250403, ...,
to the end of the data), starts `python -m predictor` and two `python -m facade` on free loopback
ports, and times requests over HTTP:

- `/predict?alias=20250327` (3,048 hours, the default range): result cached (the warm facade,
  `RESULT_CACHE_SIZE=128`); model loaded but nothing cached (the cold facade, `RESULT_CACHE_SIZE=0`:
  windows, one batched predictor call, the backtest report, the body, every time); and the first
  request for a version the predictor has not loaded yet (each other weekly alias over the same
  3,048 hours, once, on the warm facade, after one request has built its market-data frame);
- `/predict-champion`, warm (cached) and cold (`RESULT_CACHE_SIZE=0`), every version loaded.

References, timed in this process: the bare batched forward of the same windows through
`btcforecast.model` on one torch thread like the predictor (the floor of the uncached path; for the
champion, every segment's windows through its own model); one MLflow alias resolution and one alias
listing (what every /predict and /predict-champion pays until aliases are cached); and the seed's way,
one MLflow pyfunc call per window (timed on `--reference-windows` windows and scaled to all).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import torch

from btcforecast import registry
from btcforecast.alias_names import backtest_alias
from btcforecast.devservers.components import facade_process, predictor_process
from btcforecast.devservers.mlflow_server import mlflow_server
from btcforecast.devservers.process import ManagedProcess, free_port
from btcforecast.features import FEATURES, WINDOW, compute_features, windows_for_range
from btcforecast.market import LocalParquetStore, generate_bars, read_csv
from btcforecast.model import load_model, predict_quantiles
from btcforecast.training import TrainingParams, train_for_base_date

HERE = Path(__file__).parent
MODEL = "btc-lstm"
FIRST = date(2025, 3, 27)
START = pd.Timestamp(FIRST, tz="UTC")
STARTUP = 300.0
"""Seconds each server may take to become ready (generous: the machine is often loaded)."""


def p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def infer_request(windows: np.ndarray) -> tuple[bytes, dict[str, str]]:
    """A binary v2 infer request, as facade/predictor_client.py sends it (this file's name hides
    the facade package from its imports)."""
    data = np.ascontiguousarray(windows, dtype="<f4")
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "windows",
                    "shape": list(data.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": data.nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        },
        separators=(",", ":"),
    ).encode()
    headers = {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"}
    return head + data.tobytes(), headers


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} {five:.1f} {fifteen:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument(
        "--reference-windows", type=int, default=300, help="windows timed for the pyfunc reference"
    )
    args = parser.parse_args()

    csv = os.environ.get("BTC_DATA_CSV")
    bars = read_csv(csv) if csv else generate_bars()
    print(f"data: {bars.attrs.get('source')}, {len(bars)} bars; {os.cpu_count()} CPUs, {load()}")
    work = Path(tempfile.mkdtemp(prefix="bench-facade-"))
    market = work / "market.parquet"
    LocalParquetStore(market).write(bars)
    procs: list[ManagedProcess] = []
    try:
        ml = mlflow_server(work / "mlflow", ready_timeout=STARTUP).start()
        procs.append(ml)
        client = registry.connect(ml.url)
        last = bars.index[-1].date()
        days, day = [], FIRST
        while day <= last:
            days.append(day)
            day += timedelta(days=7)
        t0 = time.perf_counter()
        params = TrainingParams(epochs=3, patience=2)
        versions: dict[date, str] = {}
        for d in days:
            versions[d] = registry.register(
                client, MODEL, train_for_base_date(bars, d, params), alias=backtest_alias(d)
            )
        registry.set_alias(client, MODEL, "production", versions[days[-1]])
        print(f"trained and registered {len(days)} backtest models in {time.perf_counter() - t0:.0f} s")

        env = {
            "MLFLOW_TRACKING_URI": ml.url,
            "MODEL_NAME": MODEL,
            "STATE_DIR": str(work / "p"),
            "VERSION_CACHE_SIZE": str(len(days) + 4),  # every version stays loaded once loaded
        }
        pred = predictor_process(free_port(), env, work / "predictor.log", ready_timeout=STARTUP)
        procs.append(pred.start())
        facades = {}
        for name, cache in (("warm", "128"), ("cold", "0")):
            fenv = {
                **env,
                "PREDICTOR_URL": pred.url,
                "MARKET_DATA_URI": str(market),
                "STATE_DIR": str(work / f"f-{name}"),
                "RESULT_CACHE_SIZE": cache,
            }
            f = facade_process(
                free_port(), fenv, work / f"facade-{name}.log", name=f"facade-{name}", ready_timeout=STARTUP
            )
            procs.append(f.start())
            facades[name] = f

        figures: dict[str, float] = {}
        predict = {"alias": "20250327"}
        # Both clients keep their connections (a new httpx client per request would add its own
        # set-up, tens of milliseconds, to the predictor's side only).
        with (
            httpx.Client(base_url=facades["warm"].url, timeout=120, trust_env=False) as http,
            httpx.Client(timeout=120, trust_env=False) as straight,
        ):
            # The production version is loaded at the predictor's start: this builds the frame only.
            http.post("/predict", params={"alias": "production", "start": str(FIRST)}).raise_for_status()
            # Versions not loaded yet, alternately: the first /predict through the facade, and the
            # first infer of the same 3,048 windows sent straight to the predictor (its load + forward).
            windows, _ = windows_for_range(compute_features(bars), START, None, WINDOW)
            body, headers = infer_request(windows)
            firsts, direct = [], []
            for i, d in enumerate(days[:-1]):
                t0 = time.perf_counter()
                if i % 2 == 0:
                    answer = http.post(
                        "/predict", params={"alias": d.strftime("%Y%m%d"), "start": str(FIRST)}
                    )
                    firsts.append(time.perf_counter() - t0)
                    assert answer.json()["n"] == 3048, answer.text[:200]
                else:
                    url = f"{pred.url}/v2/models/{MODEL}/versions/{versions[d]}/infer"
                    straight.post(url, content=body, headers=headers).raise_for_status()
                    direct.append(time.perf_counter() - t0)
            figures["predictor first"] = p50(direct)
            figures["predict first"] = p50(firsts)
            n = len(http.post("/predict", params=predict).json()["predictions"])
            segments = len(http.get("/predict-champion").json()["metrics"]["per_alias"])
            figures["predict cached"] = p50(
                timed(lambda: http.post("/predict", params=predict).raise_for_status(), args.repeat)
            )
            figures["champion warm"] = p50(
                timed(lambda: http.get("/predict-champion").raise_for_status(), args.repeat)
            )
        with httpx.Client(base_url=facades["cold"].url, timeout=120, trust_env=False) as http:
            http.get("/predict-champion").raise_for_status()
            figures["predict uncached"] = p50(
                timed(lambda: http.post("/predict", params=predict).raise_for_status(), args.repeat)
            )
            figures["champion cold"] = p50(
                timed(lambda: http.get("/predict-champion").raise_for_status(), args.repeat)
            )
        print(
            f"/predict?alias=20250327 returns {n} predictions; /predict-champion stitches {segments} versions"
        )
        print(
            f"first requests timed on {len(firsts)} versions not yet loaded through the facade and "
            f"{len(direct)} straight to the predictor (3,048 hours each)"
        )

        # References in this process.
        torch.set_num_threads(1)  # as the predictor (TORCH_THREADS=1)
        features = compute_features(bars)
        models = {}
        for d in days:
            ref = registry.resolve(client, MODEL, backtest_alias(d))
            models[d] = load_model(registry.download_version(client, ref, work / "cache"))[0]
        figures["forward"] = p50(timed(lambda: predict_quantiles(models[FIRST], windows), args.repeat))
        champion_windows = []
        for i, d in enumerate(days):
            end = pd.Timestamp(days[i + 1], tz="UTC") - pd.Timedelta(hours=1) if i + 1 < len(days) else None
            champion_windows.append(
                (models[d], windows_for_range(features, pd.Timestamp(d, tz="UTC"), end)[0])
            )
        figures["champion forward"] = p50(
            timed(lambda: [predict_quantiles(m, w) for m, w in champion_windows], args.repeat)
        )
        figures["resolve"] = p50(
            timed(lambda: registry.resolve(client, MODEL, backtest_alias(FIRST)), args.repeat)
        )
        figures["list aliases"] = p50(timed(lambda: registry.list_aliases(client, MODEL), args.repeat))
        # What the predictor's first infer of a version pays before its forward: the version's
        # metadata (one MLflow call) and its two files (config.json, weights), into a fresh directory.
        refs = [registry.resolve(client, MODEL, backtest_alias(d)) for d in days]
        figures["version lookup"] = p50(
            timed(lambda: registry.resolve(client, MODEL, version=refs[0].version), args.repeat)
        )
        fetches = itertools.count()

        def fetch() -> None:
            i = next(fetches)
            registry.download_serving_files(client, refs[i % len(refs)], work / f"files-{i}")

        figures["files"] = p50(timed(fetch, args.repeat))

        mlflow.set_tracking_uri(ml.url)
        model_dir = registry.download_version(
            client, registry.resolve(client, MODEL, backtest_alias(FIRST)), work / "c2"
        )
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(
                name="reference",
                python_model=str(HERE / "facade_reference_model.py"),
                artifacts={"model_dir": str(model_dir)},
                pip_requirements=["torch", "pandas"],
            )
        pyfunc = mlflow.pyfunc.load_model(info.model_uri)
        k = min(args.reference_windows, len(windows))
        frames = [pd.DataFrame(w, columns=list(FEATURES)) for w in windows[:k]]
        t0 = time.perf_counter()
        ref_out = [pyfunc.predict(frame)[0] for frame in frames]
        per_window = (time.perf_counter() - t0) / k
        figures["pyfunc"] = per_window * len(windows) * 1000
        facade_pred = np.array(
            [p["prediction"] for p in httpx.post(f"{facades['warm'].url}/predict", params=predict, timeout=60)
             .json()["predictions"][:k]]
        )  # fmt: skip
        print(
            f"pyfunc reference timed on {k} windows ({per_window * 1000:.2f} ms per window); "
            f"max |facade - reference| = {np.abs(facade_pred - np.round(ref_out, 2)).max():.2f} USD"
        )

        f = figures
        rows = [
            ("/predict cached (3,048 hours)", f["predict cached"], "goal", 10.0),
            ("/predict loaded, not cached", f["predict uncached"], "bare batched forward", f["forward"]),
            ("/predict first request for a version", f["predict first"], "goal", 150.0),
            (
                "/predict first request for a version",
                f["predict first"],
                "predictor's own first infer",
                f["predictor first"],
            ),
            ("/predict-champion warm", f["champion warm"], "goal", 20.0),
            ("/predict-champion cold", f["champion cold"], "goal", 300.0),
            (
                "/predict-champion cold",
                f["champion cold"],
                "bare forwards, every segment",
                f["champion forward"],
            ),
            (
                "/predict first request for a version",
                f["predict first"],
                "version lookup + its two files (MLflow)",
                f["version lookup"] + f["files"],
            ),
            ("/predict cached", f["predict cached"], "one MLflow alias resolution", f["resolve"]),
            ("/predict-champion warm", f["champion warm"], "one MLflow alias listing", f["list aliases"]),
            ("/predict loaded, not cached", f["predict uncached"], "per-window pyfunc (seed)", f["pyfunc"]),
        ]
        print(f"\n{load()}\n")
        print("| what | p50 ms | reference | reference ms | ratio |\n| --- | ---: | --- | ---: | ---: |")
        for what, value, ref, ref_ms in rows:
            print(f"| {what} | {value:.1f} | {ref} | {ref_ms:.1f} | {value / ref_ms:.2f}x |")
        print(
            f"\npredictor's first infer of a version = version lookup {f['version lookup']:.1f} ms + files "
            f"{f['files']:.1f} ms + load, warm-up check and forward (bare forward {f['forward']:.1f} ms)"
        )
        print(
            f"/predict cached without its alias resolution (what an alias cache leaves): "
            f"{f['predict cached'] - f['resolve']:.1f} ms; /predict-champion warm without its alias listing: "
            f"{f['champion warm'] - f['list aliases']:.1f} ms"
        )
    finally:
        for p in reversed(procs):
            p.stop()


if __name__ == "__main__":
    main()
