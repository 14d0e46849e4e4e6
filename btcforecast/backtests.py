"""The weekly backtest models: one model per base date, each trained on the 30 days before it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
from mlflow.tracking import MlflowClient

from btcforecast.aliases import backtest_alias
from btcforecast.registry import register
from btcforecast.training import TrainingParams, train_for_base_date

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
        raise ValueError(f"--every {text!r}: use a number of days like 7d or hours like 24h") from e


def base_dates(start: date, end: date, every: timedelta = DEFAULT_EVERY) -> list[date]:
    """Base dates from ``start`` to ``end`` inclusive, ``every`` apart."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    if every < timedelta(days=1):
        raise ValueError("backtests are daily at the finest")
    days: list[date] = []
    day = start
    while day <= end:
        days.append(day)
        day += every
    return days


def train_backtests(
    bars: pd.DataFrame,
    client: MlflowClient,
    model_name: str,
    dates: Iterable[date],
    params: TrainingParams | None = None,
    on_done: Callable[[BacktestResult], None] | None = None,
) -> list[BacktestResult]:
    """Train, register and alias one model per base date, in date order."""
    results = []
    for day in dates:
        trained = train_for_base_date(bars, day, params)
        alias = backtest_alias(day)
        version = register(client, model_name, trained, alias=alias)
        result = BacktestResult(base_date=day, alias=alias, version=version)
        results.append(result)
        if on_done:
            on_done(result)
    return results
