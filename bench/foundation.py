"""Foundation figures: training one backtest model, the 26 weekly models, loading a version by alias.

Run: `.venv/bin/python bench/foundation.py` (BTC_DATA_CSV for the real bars, else synthetic).
Starts its own MLflow server on a free loopback port in a temporary directory; prints a table.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from btcforecast import registry
from btcforecast.backtests import DEFAULT_END, DEFAULT_START, base_dates, train_backtests
from btcforecast.devservers.mlflow_server import mlflow_server
from btcforecast.market import generate_bars, read_csv
from btcforecast.training import train_for_base_date

COLD_LOAD = """
import sys, time
t0 = time.perf_counter()
from pathlib import Path
from btcforecast import registry
t1 = time.perf_counter()
client = registry.connect(sys.argv[1])
loaded = registry.load_alias(client, "btc-lstm", "backtest_20250327", Path(sys.argv[2]))
t2 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f}")
"""


def main() -> None:
    csv = os.environ.get("BTC_DATA_CSV")
    bars = read_csv(csv) if csv else generate_bars()
    print(f"data: {bars.attrs['source']}, {len(bars)} bars; torch threads for training: 1")
    rows: list[tuple[str, str]] = []

    timings = []
    for _ in range(3):
        t = time.perf_counter()
        train_for_base_date(bars, date(2025, 3, 27))
        timings.append(time.perf_counter() - t)
    rows.append(("train one backtest model (median of 3)", f"{statistics.median(timings):.2f} s"))

    with tempfile.TemporaryDirectory() as tmp, mlflow_server(Path(tmp) / "mlflow") as server:
        client = registry.connect(server.url)
        dates = base_dates(DEFAULT_START, DEFAULT_END)
        t = time.perf_counter()
        train_backtests(bars, client, "btc-lstm", dates)
        rows.append((f"train + register the {len(dates)} weekly models", f"{time.perf_counter() - t:.1f} s"))

        cold = []
        for i in range(3):
            out = subprocess.run(
                [sys.executable, "-c", COLD_LOAD, server.url, str(Path(tmp) / f"cold-{i}")],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            cold.append((float(out[0]), float(out[1])))
        rows.append(
            (
                "cold process: import btcforecast.registry (median)",
                f"{statistics.median(c[0] for c in cold):.2f} s",
            )
        )
        rows.append(
            (
                "cold process: resolve + download + load (median)",
                f"{statistics.median(c[1] for c in cold) * 1000:.0f} ms",
            )
        )

        warm_download, warm_cached = [], []
        for i in range(10):
            t = time.perf_counter()
            registry.load_alias(client, "btc-lstm", "backtest_20250327", Path(tmp) / f"warm-{i}")
            warm_download.append(time.perf_counter() - t)
            t = time.perf_counter()
            registry.load_alias(client, "btc-lstm", "backtest_20250327", Path(tmp) / f"warm-{i}")
            warm_cached.append(time.perf_counter() - t)
        rows.append(
            (
                "warm process: resolve + download + load (median of 10)",
                f"{statistics.median(warm_download) * 1000:.0f} ms",
            )
        )
        rows.append(
            (
                "warm process: resolve + load, files cached (median of 10)",
                f"{statistics.median(warm_cached) * 1000:.0f} ms",
            )
        )

    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
