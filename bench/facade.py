"""Facade figures: /predict?alias=20250327 and /predict-champion, warm and cold, against a reference.

Usage: BTC_DATA_CSV=/work/shared/data/btc_usd_1h.csv .venv/bin/python bench/facade.py [--repeat 15]

Starts its own MLflow, trains and registers quick backtest models (20250327, 20250403, ..., to the
end of the data), starts `python -m predictor` and `python -m facade` on free loopback ports, and
times requests over HTTP. Cold = the facade's result cache emptied (RESULT_CACHE_SIZE=0: features,
windows and one batched predictor call per alias every time); warm = cache on. The reference makes
one model call per window through an MLflow pyfunc with pandas scaling.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd

from btcforecast import registry
from btcforecast.alias_names import backtest_alias
from btcforecast.devservers.components import facade_process, predictor_process
from btcforecast.devservers.mlflow_server import mlflow_server
from btcforecast.devservers.process import ManagedProcess, free_port
from btcforecast.features import FEATURES, WINDOW, compute_features, windows_for_range
from btcforecast.market import LocalParquetStore, generate_bars, read_csv
from btcforecast.training import TrainingParams, train_for_base_date

HERE = Path(__file__).parent


def p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--reference-windows", type=int, default=3048, help="windows timed for the reference")
    args = parser.parse_args()
    import os

    csv = os.environ.get("BTC_DATA_CSV")
    bars = read_csv(csv) if csv else generate_bars()
    print(f"data: {bars.attrs.get('source')}, {len(bars)} bars")
    work = Path(tempfile.mkdtemp(prefix="bench-facade-"))
    market = work / "market.parquet"
    LocalParquetStore(market).write(bars)
    procs: list[ManagedProcess] = []
    try:
        ml = mlflow_server(work / "mlflow").start()
        procs.append(ml)
        client = registry.connect(ml.url)
        last = bars.index[-1].date()
        days, day = [], date(2025, 3, 27)
        while day <= last:
            days.append(day)
            day += timedelta(days=7)
        t0 = time.perf_counter()
        params = TrainingParams(epochs=3, patience=2)
        for d in days:
            registry.register(
                client, "btc-lstm", train_for_base_date(bars, d, params), alias=backtest_alias(d)
            )
        registry.set_alias(
            client,
            "btc-lstm",
            "production",
            registry.resolve(client, "btc-lstm", backtest_alias(days[-1])).version,
        )
        print(f"trained and registered {len(days)} backtest models in {time.perf_counter() - t0:.0f} s")

        env = {"MLFLOW_TRACKING_URI": ml.url, "MODEL_NAME": "btc-lstm", "STATE_DIR": str(work / "p")}
        pport = free_port()
        pred = predictor_process(pport, env, work / "predictor.log")
        procs.append(pred.start())
        facades = {}
        for name, cache in (("warm", "128"), ("cold", "0")):
            port = free_port()
            fenv = {
                **env,
                "PREDICTOR_URL": pred.url,
                "MARKET_DATA_URI": str(market),
                "STATE_DIR": str(work / f"f-{name}"),
                "RESULT_CACHE_SIZE": cache,
            }
            f = facade_process(port, fenv, work / f"facade-{name}.log", name=f"facade-{name}")
            procs.append(f.start())
            facades[name] = f

        figures: dict[str, float] = {}
        for name, f in facades.items():
            with httpx.Client(base_url=f.url, timeout=120, trust_env=False) as http:
                n = len(http.post("/predict", params={"alias": "20250327"}).json()["predictions"])
                http.get("/predict-champion")  # first call loads every version into the predictor's cache
                figures[f"predict {name}"] = p50(
                    timed(
                        lambda: http.post("/predict", params={"alias": "20250327"}).raise_for_status(),
                        args.repeat,
                    )
                )
                figures[f"champion {name}"] = p50(
                    timed(lambda: http.get("/predict-champion").raise_for_status(), args.repeat)
                )
        print(f"/predict?alias=20250327 returns {n} predictions")

        # Reference: one pyfunc call per window.
        mlflow.set_tracking_uri(ml.url)
        ref = registry.resolve(client, "btc-lstm", "backtest_20250327")
        model_dir = registry.download_version(client, ref, work / "cache")
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(
                name="reference",
                python_model=str(HERE / "facade_reference_model.py"),
                artifacts={"model_dir": str(model_dir)},
                pip_requirements=["torch", "pandas"],
            )
        pyfunc = mlflow.pyfunc.load_model(info.model_uri)
        features = compute_features(bars)
        windows, hours = windows_for_range(features, pd.Timestamp("2025-03-27", tz="UTC"), None, WINDOW)  # noqa: RUF059
        k = min(args.reference_windows, len(windows))
        frames = [pd.DataFrame(w, columns=list(FEATURES)) for w in windows[:k]]
        t0 = time.perf_counter()
        ref_out = [pyfunc.predict(frame)[0] for frame in frames]
        per_window = (time.perf_counter() - t0) / k
        figures["reference predict"] = per_window * len(windows) * 1000
        segments = len(windows)  # the champion covers the same hours, one call per window as well
        figures["reference champion"] = per_window * segments * 1000
        facade_pred = np.array(
            [
                p["prediction"]
                for p in httpx.post(
                    f"{facades['warm'].url}/predict", params={"alias": "20250327"}, timeout=60
                ).json()["predictions"][:k]
            ]
        )
        print(
            f"reference timed on {k} windows ({per_window * 1000:.2f} ms per window); max |facade - reference| = "  # noqa: E501
            f"{np.abs(facade_pred - np.round(ref_out, 2)).max():.2f} USD"
        )

        print("\n| what | p50 ms | reference ms | speed-up |\n| --- | ---: | ---: | ---: |")
        for what, ref_key in (("predict", "reference predict"), ("champion", "reference champion")):
            for mode in ("warm", "cold"):
                v = figures[f"{what} {mode}"]
                print(
                    f"| {'/predict?alias=20250327' if what == 'predict' else '/predict-champion'} {mode} | {v:.1f} | {figures[ref_key]:.0f} | {figures[ref_key] / v:.0f}x |"  # noqa: E501
                )
    finally:
        for p in reversed(procs):
            p.stop()


if __name__ == "__main__":
    main()
