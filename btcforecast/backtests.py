"""The weekly backtest models: one model per base date, each trained on the window before it.

Training is CPU-bound and single-threaded per model (that is what makes it deterministic), so the
models are trained in a pool of worker processes, one torch thread each, and registered by the parent
in date order. A worker sends back what a registry version holds anyway: the config as JSON and the
weights as safetensors bytes, rebuilt in the parent the way ``load_model`` does (no module objects
cross the process boundary). Identical bars, base date and parameters give identical weights in a
worker and in the parent, so the pool changes how long training takes, never what it produces.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
from mlflow.tracking import MlflowClient

from btcforecast.alias_names import backtest_alias
from btcforecast.errors import InputError
from btcforecast.registry import register
from btcforecast.training import TrainedModel, TrainingParams, train_for_base_date

DEFAULT_START = date(2025, 1, 2)
DEFAULT_END = date(2025, 6, 26)
DEFAULT_EVERY = timedelta(days=7)


@dataclass(frozen=True)
class BacktestResult:
    base_date: date
    alias: str
    version: str


def parse_every(text: str) -> timedelta:
    """'7d', '24h' or a number of days."""
    text = text.strip().lower()
    try:
        if text.endswith("d"):
            return timedelta(days=int(text[:-1]))
        if text.endswith("h"):
            return timedelta(hours=int(text[:-1]))
        return timedelta(days=int(text))
    except ValueError as e:
        raise InputError(f"--every {text!r}: use a number of days like 7d or hours like 24h") from e


def base_dates(start: date, end: date, every: timedelta = DEFAULT_EVERY) -> list[date]:
    """Base dates from ``start`` to ``end`` inclusive, ``every`` apart."""
    if end < start:
        raise InputError(f"end {end} is before start {start}")
    if every < timedelta(days=1):
        raise InputError("backtests are daily at the finest")
    days: list[date] = []
    day = start
    while day <= end:
        days.append(day)
        day += every
    return days


def default_workers() -> int:
    """The CPU cores this process may use (2 on the reference machine)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_worker_bars: pd.DataFrame | None = None


def _init_worker(bars: pd.DataFrame) -> None:
    global _worker_bars
    import torch

    torch.set_num_threads(1)
    _worker_bars = bars


def _train_in_worker(day: date, params: TrainingParams | None) -> tuple[str, bytes, float, float]:
    from btcforecast.model import model_bytes

    assert _worker_bars is not None, "worker not initialised"
    trained = train_for_base_date(_worker_bars, day, params)
    config_json, weights = model_bytes(trained.model, trained.config)
    return config_json, weights, trained.seconds, trained.cpu_seconds


def train_models(
    bars: pd.DataFrame,
    dates: Iterable[date],
    params: TrainingParams | None = None,
    workers: int | None = None,
) -> Iterator[TrainedModel]:
    """Train one model per base date, yielded in date order as soon as each (and those before it) is done.

    ``workers`` processes (default: the usable cores, at most one per date); 1 trains in this process.
    """
    days = list(dates)
    workers = min(workers or default_workers(), len(days))
    if workers <= 1:
        for day in days:
            yield train_for_base_date(bars, day, params)
        return
    from btcforecast.model import model_from_bytes

    # spawn, not fork: a forked child of a process that has used torch's thread pools can hang.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(bars,)) as pool:
        futures = [pool.submit(_train_in_worker, day, params) for day in days]
        for day, future in zip(days, futures, strict=True):
            config_json, weights, seconds, cpu_seconds = future.result()
            model, config = model_from_bytes(config_json, weights)
            yield TrainedModel(model, config, day, seconds=seconds, cpu_seconds=cpu_seconds)


def train_backtests(
    bars: pd.DataFrame,
    client: MlflowClient,
    model_name: str,
    dates: Iterable[date],
    params: TrainingParams | None = None,
    on_done: Callable[[BacktestResult], None] | None = None,
    workers: int | None = None,
) -> list[BacktestResult]:
    """Train (in parallel), then register and alias one model per base date, in date order."""
    results = []
    for trained in train_models(bars, dates, params, workers):
        alias = backtest_alias(trained.base_date)
        version = register(client, model_name, trained, alias=alias, bars=bars)
        result = BacktestResult(base_date=trained.base_date, alias=alias, version=version)
        results.append(result)
        if on_done:
            on_done(result)
    return results
