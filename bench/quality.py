"""Forecast quality on the stitched champion backtest, beside persistence and the naive band.

Trains the 14 champion models (base dates 2025-03-27 .. 2025-06-26, weekly) with the given training
knobs, exactly as `make up` would (btcforecast.backtests.train_models: a process pool, no look-ahead:
each model sees only the bars before its base date), lets each serve from its base date until the hour
before the next base date (the last until the end of the data), and prints every figure of
btcforecast.evaluation.backtest_report for the 3,048 stitched hours, plus training time per model.

    PYTHONPATH=. BTC_DATA_CSV=/work/shared/data/btc_usd_1h.csv .venv/bin/python bench/quality.py \\
        --train-days 365

``--dates all`` trains the 26 weekly models of `make up` (2025-01-02 .. 2025-06-26) instead and
still scores the champion stretch; use it to time first-run training. ``--json FILE`` writes the
report and the timings.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from btcforecast.backtests import DEFAULT_END, DEFAULT_START, base_dates, default_workers, train_models
from btcforecast.evaluation import BacktestReport, backtest_report
from btcforecast.features import compute_features, windows_for_range
from btcforecast.market import read_csv
from btcforecast.model import predict_quantiles
from btcforecast.training import TrainedModel, TrainingParams

CHAMPION_START = date(2025, 3, 27)
HOUR = pd.Timedelta(hours=1)


def stitched_forecast(
    bars: pd.DataFrame, models: list[TrainedModel]
) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """Hours, quantiles [N, Q] as served, and the median before the shrink [N] (diagnostic)."""
    features = compute_features(bars)
    data_end = bars.index[-1]
    hours, served, unshrunk = [], [], []
    for i, trained in enumerate(models):
        start = pd.Timestamp(trained.base_date, tz="UTC")
        end = pd.Timestamp(models[i + 1].base_date, tz="UTC") - HOUR if i + 1 < len(models) else data_end
        windows, segment = windows_for_range(features, start, end, trained.config.window)
        quantiles = predict_quantiles(trained.model, windows).astype(np.float64)
        shrink, trained.model.point_shrink = trained.model.point_shrink, 1.0
        raw = predict_quantiles(trained.model, windows)[:, trained.config.point_index].astype(np.float64)
        trained.model.point_shrink = shrink
        hours.append(segment)
        served.append(quantiles)
        unshrunk.append(raw)
    return hours[0].append(hours[1:]), np.concatenate(served), np.concatenate(unshrunk)


def _row(name: str, *values: object) -> str:
    cells = [f" {v:>12.4f}" if isinstance(v, float) else f" {v!s:>12}" for v in values]
    return f"{name:<34}" + "".join(cells)


def print_report(report: BacktestReport, unshrunk_mae: float, shrinks: list[float]) -> None:
    model, persistence = report.model, report.persistence
    print(_row("", "model", "persistence", "naive band"))
    print(_row("hours", model.n, persistence.n, ""))
    print(_row("MAE (USD)", model.mae, persistence.mae, ""))
    print(_row("MAE ratio to persistence", model.mae / persistence.mae, 1.0, ""))
    print(_row("RMSE (USD)", model.rmse, persistence.rmse, ""))
    print(_row("MAPE (%)", model.mape, persistence.mape, ""))
    print(_row("directional accuracy (moved hours)", model.directional_accuracy, 0.0, ""))
    print(_row("flat share", model.flat_share, persistence.flat_share, ""))
    if report.significance is not None:
        dm = report.significance
        print(_row("Diebold-Mariano statistic", dm.statistic, "", ""))
        print(_row("Diebold-Mariano p-value", dm.p_value, f"better: {dm.better}", ""))
    print(_row("median before shrink: MAE ratio", unshrunk_mae / persistence.mae, "", ""))
    print(f"point shrink per model: {', '.join(f'{s:g}' for s in shrinks)}")
    if report.interval is not None and report.naive_band is not None:
        ours, band = report.interval, report.naive_band
        print(_row(f"{ours.level:.0%} interval coverage (%)", 100 * ours.coverage, "", 100 * band.coverage))
        for key, value in ours.coverage_by_volatility.items():
            print(
                _row(
                    f"  coverage, {key} tercile (%)", 100 * value, "", 100 * band.coverage_by_volatility[key]
                )
            )
        print(_row("mean interval width (USD)", ours.mean_width, "", band.mean_width))
        print(_row("pinball loss (USD)", ours.pinball, "", band.pinball))
        print(_row("pinball ratio to naive band", report.pinball_ratio or float("nan"), "", 1.0))


def main(argv: list[str] | None = None) -> int:
    defaults = TrainingParams()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--csv", default=os.environ.get("BTC_DATA_CSV"), help="hourly CSV (BTC_DATA_CSV)")
    parser.add_argument("--dates", choices=("champion", "all"), default="champion")
    parser.add_argument("--workers", type=int, default=default_workers())
    for field in dataclasses.fields(TrainingParams):
        kind = type(getattr(defaults, field.name))
        parser.add_argument(
            f"--{field.name.replace('_', '-')}", type=kind, default=getattr(defaults, field.name)
        )
    parser.add_argument("--json", type=Path, help="also write the report and timings here")
    args = parser.parse_args(argv)
    if not args.csv:
        parser.error("--csv or BTC_DATA_CSV is required (the real hourly data)")
    params = TrainingParams(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainingParams)})
    bars = read_csv(args.csv)
    start = CHAMPION_START if args.dates == "champion" else DEFAULT_START
    days = base_dates(start, DEFAULT_END, timedelta(days=7))
    print(f"{len(days)} models {days[0]} .. {days[-1]}, {args.workers} workers, {params}", flush=True)

    began = time.perf_counter()
    models = []
    for trained in train_models(bars, days, params, args.workers):
        print(
            f"  {trained.base_date}: {trained.seconds:6.1f} s wall, {trained.cpu_seconds:6.1f} s CPU, "
            f"{trained.config.training['epochs_run']} epochs, shrink {trained.config.point_shrink:g}",
            flush=True,
        )
        models.append(trained)
    total = time.perf_counter() - began
    seconds = [m.seconds for m in models]
    cpu = [m.cpu_seconds for m in models]
    print(
        f"training: {total:.1f} s wall for {len(models)} models with {args.workers} workers; per model "
        f"wall mean {np.mean(seconds):.1f} s (max {max(seconds):.1f}), CPU mean {np.mean(cpu):.1f} s "
        f"(max {max(cpu):.1f}), sum of CPU {sum(cpu):.1f} s; load average now {os.getloadavg()[0]:.1f}\n"
    )

    champions = [m for m in models if m.base_date >= CHAMPION_START]
    hours, quantiles, unshrunk = stitched_forecast(bars, champions)
    levels = champions[0].config.quantiles
    report = backtest_report(bars["close"], hours, quantiles, levels)
    actual = bars["close"].loc[hours].to_numpy(dtype=np.float64)
    unshrunk_mae = float(np.abs(unshrunk - actual).mean())
    print(f"stitched champion backtest {hours[0]:%Y-%m-%d %H:%M} .. {hours[-1]:%Y-%m-%d %H:%M}")
    print_report(report, unshrunk_mae, [m.config.point_shrink for m in champions])
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "params": dataclasses.asdict(params),
                    "report": report.model_dump(),
                    "unshrunk_mae": unshrunk_mae,
                    "shrink": [m.config.point_shrink for m in champions],
                    "seconds": seconds,
                    "cpu_seconds": cpu,
                    "total_seconds": total,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
