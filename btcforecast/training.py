"""Training one model for a base date: a trailing window of bars before it, a fixed seed, a held-out tail.

The network learns the 10/50/90% quantiles of the next hour's log return with the pinball loss;
early stopping and the median's shrink factor (btcforecast.model) are chosen on the held-out tail
(the last ``validation_fraction`` of the window), whose backtest report -- point metrics beside
persistence, the 80% interval beside the naive band -- is stored in the model's config.

Identical bars and seed give identical weights: the data order comes from a seeded generator and
training runs on one thread (btcforecast.backtests runs several trainings in worker processes).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from time import perf_counter, thread_time
from typing import Any

import numpy as np
import pandas as pd
import torch

from btcforecast.errors import InputError
from btcforecast.evaluation import backtest_report
from btcforecast.features import (
    CLOSE_INDEX,
    FEATURES,
    WINDOW,
    compute_features,
    history_start,
    windows_for_range,
)
from btcforecast.market.bars import is_synthetic
from btcforecast.model import QUANTILES, ForecastLSTM, ModelConfig, predict_quantiles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingParams:
    """Defaults chosen on the stitched champion backtest (docs/model.md has the tables and commands).

    ``train_days`` is 365: on the 14 champion models (base dates 2025-03-27 .. 2025-06-26, 3,048
    hours, no look-ahead) a year of history gave the lowest pinball loss (3.7% below the naive
    band, against 1.7% for 30 days) and the most even 80% coverage across ex-ante volatility
    terciles, with the median at or just below persistence's MAE; 30 days covered calm hours too
    often and volatile hours too rarely, as the naive band does. Longer windows see more regimes, which
    is what a volatility-aware band needs; the point forecast barely depends on the window.

    ``batch_size`` 512 with ``learning_rate`` 4e-3, at most 30 ``epochs`` and ``patience`` 5: a year
    is ~7,000 training windows; batches of 512 train a model in about 5 s of CPU on average (the
    2025-06-26 model: 3.0 s against 8.3 s at 256 and 2e-3) with the same backtest figures, which keeps
    the 26 weekly models of the first ``make up`` within the 3-minute budget on 2 cores (trained in a
    process pool by btcforecast.backtests).

    ``hidden_size`` is 32 where the original used 64: on four base dates the validation MAE of the two
    differed by under 1 USD while 32 halves training time and batched inference.
    """

    train_days: int = 365
    window: int = WINDOW
    hidden_size: int = 32
    num_layers: int = 1
    epochs: int = 30
    patience: int = 5
    batch_size: int = 512
    learning_rate: float = 4e-3
    validation_fraction: float = 0.2
    seed: int = 42


@dataclass
class TrainedModel:
    model: ForecastLSTM
    config: ModelConfig
    base_date: date
    seconds: float = 0.0
    """Wall-clock training time (not part of the config, which stays deterministic)."""
    cpu_seconds: float = 0.0
    """CPU time of the training thread: the wall time on an idle core, less noisy on a busy machine."""

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.config.training)


def as_utc(day: date) -> pd.Timestamp:
    return pd.Timestamp(datetime.combine(day, time(0), tzinfo=UTC))


def _scaler(windows: np.ndarray, close_index: int) -> tuple[np.ndarray, np.ndarray]:
    relative = windows.copy()
    relative[..., close_index] = np.log(windows[..., close_index] / windows[:, -1:, close_index])
    flat = relative.reshape(-1, relative.shape[-1]).astype(np.float64)
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    std[std < 1e-8] = 1.0
    return mean, std


def train_for_base_date(
    bars: pd.DataFrame, base_date: date, params: TrainingParams | None = None
) -> TrainedModel:
    """Train on the ``params.train_days`` days of bars before ``base_date`` (exclusive)."""
    params = params or TrainingParams()
    started, started_cpu = perf_counter(), thread_time()
    end = as_utc(base_date)
    start = end - pd.Timedelta(days=params.train_days)
    history = bars.loc[history_start(start, params.window) : end - pd.Timedelta(hours=1)]
    if history.empty or history.index[0] > history_start(start, params.window):
        raise InputError(f"not enough bars before {base_date} to train on {params.train_days} days")
    features = compute_features(history)
    windows, hours = windows_for_range(features, start, end - pd.Timedelta(hours=1), params.window)
    previous = windows[:, -1, CLOSE_INDEX].astype(np.float64)
    actual = history["close"].loc[hours].to_numpy(dtype=np.float64)
    targets = np.log(actual / previous)

    n_val = max(1, int(len(windows) * params.validation_fraction))
    n_train = len(windows) - n_val
    mean, std = _scaler(windows[:n_train], CLOSE_INDEX)
    target_mean = float(targets[:n_train].mean())
    target_std = float(targets[:n_train].std()) or 1.0

    config = ModelConfig(
        feature_names=list(FEATURES),
        window=params.window,
        close_index=CLOSE_INDEX,
        hidden_size=params.hidden_size,
        num_layers=params.num_layers,
        feature_mean=[float(v) for v in mean],
        feature_std=[float(v) for v in std],
        target_mean=target_mean,
        target_std=target_std,
        quantiles=list(QUANTILES),
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, epochs_run, best_epoch = _fit(config, params, windows, targets, n_train)
        with torch.inference_mode():
            validation_windows = torch.from_numpy(windows[n_train:])
            unshrunk = model.log_returns(validation_windows, point_shrink=1.0).numpy().astype(np.float64)
        shrink = choose_point_shrink(actual[n_train:], previous[n_train:], unshrunk[:, config.point_index])
        model.point_shrink = shrink
        quantiles = predict_quantiles(model, windows[n_train:]).astype(np.float64)
    finally:
        torch.set_num_threads(threads)

    closes = bars["close"].loc[: end - pd.Timedelta(hours=1)]
    source = str(bars.attrs.get("source", "unknown"))
    config = ModelConfig(
        **{
            **config.__dict__,
            "point_shrink": shrink,
            "training": {
                **params.__dict__,
                "base_date": base_date.isoformat(),
                "train_start": start.isoformat(),
                "train_end": end.isoformat(),
                "samples": len(windows),
                "validation_samples": n_val,
                "validation_start": hours[n_train].isoformat(),
                "epochs_run": epochs_run,
                "best_epoch": best_epoch,
            },
            "data_source": {"source": source, "synthetic": is_synthetic(bars)},
            "metrics": validation_metrics(closes, hours[n_train:], quantiles, config.quantiles, shrink),
        }
    )
    seconds, cpu_seconds = perf_counter() - started, thread_time() - started_cpu
    return TrainedModel(
        model=model, config=config, base_date=base_date, seconds=seconds, cpu_seconds=cpu_seconds
    )


SHRINK_GRID = tuple(i / 20 for i in range(21))
"""Candidate factors for the median's predicted return, 0 (persistence) .. 1 (as trained)."""


def choose_point_shrink(actual: np.ndarray, previous: np.ndarray, median_log_return: np.ndarray) -> float:
    """The factor in SHRINK_GRID with the lowest validation MAE; ties go to the smaller factor.

    0 is in the grid, so a model whose median does worse than persistence on its validation tail
    serves persistence as its point forecast: the point forecast does no harm there by construction.
    """
    errors = [
        float(np.abs(previous * np.exp(shrink * median_log_return) - actual).mean()) for shrink in SHRINK_GRID
    ]
    best = min(range(len(SHRINK_GRID)), key=lambda i: (round(errors[i], 9), i))
    return SHRINK_GRID[best]


def validation_metrics(
    closes: pd.Series,
    hours: pd.DatetimeIndex,
    quantiles: np.ndarray,
    levels: list[float],
    shrink: float,
) -> dict[str, dict[str, Any]]:
    """The validation tail's backtest report as flat groups (the registry logs each number)."""
    report = backtest_report(closes, hours, quantiles, levels)
    groups: dict[str, dict[str, Any]] = {
        "validation": report.model.model_dump(),
        "persistence": report.persistence.model_dump(),
        "point": {"shrink": shrink, "pinball_ratio": report.pinball_ratio},
    }
    if report.significance is not None:
        groups["significance"] = report.significance.model_dump()
    for name, interval in (("interval", report.interval), ("naive_band", report.naive_band)):
        if interval is not None:
            dumped = interval.model_dump()
            by_tercile = dumped.pop("coverage_by_volatility")
            groups[name] = {**dumped, **{f"coverage_{k}": v for k, v in by_tercile.items()}}
    return groups


def _fit(
    config: ModelConfig, params: TrainingParams, windows: np.ndarray, targets: np.ndarray, n_train: int
) -> tuple[ForecastLSTM, int, int]:
    """Adam on the pinball loss with early stopping on the validation tail: (model, epochs run, best)."""
    torch.manual_seed(params.seed)
    generator = torch.Generator().manual_seed(params.seed)
    model = ForecastLSTM(config)
    optimiser = torch.optim.Adam(model.parameters(), lr=params.learning_rate)
    x = torch.from_numpy(windows)
    y = torch.from_numpy(((targets - config.target_mean) / config.target_std).astype(np.float32))
    x_train, y_train, x_val, y_val = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    quantiles = torch.tensor(config.quantiles, dtype=torch.float32)

    def loss_fn(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Pinball loss summed over the quantiles, averaged over the batch."""
        diff = target.unsqueeze(1) - predicted
        return torch.maximum(quantiles * diff, (quantiles - 1.0) * diff).sum(1).mean()

    best_loss, best_state, stale, best_epoch = float("inf"), copy.deepcopy(model.state_dict()), 0, 0
    epoch = 0
    for epoch in range(1, params.epochs + 1):
        model.train()
        order = torch.randperm(n_train, generator=generator)
        for batch in order.split(params.batch_size):
            optimiser.zero_grad()
            loss = loss_fn(model.predict_scaled_returns(x_train[batch]), y_train[batch])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
        model.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(model.predict_scaled_returns(x_val), y_val))
        if val_loss < best_loss - 1e-6:
            best_loss, best_state, stale, best_epoch = val_loss, copy.deepcopy(model.state_dict()), 0, epoch
        else:
            stale += 1
            if stale >= params.patience:
                log.debug("early stop at epoch %d (best validation loss %.5f)", epoch, best_loss)
                break
    model.load_state_dict(best_state)
    model.eval()
    return model, epoch, best_epoch
