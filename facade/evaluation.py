"""The quality gate's backtest: a newly resolved version against the one served, on the same hours.

The operator's gate (``ModelAlias.spec.gate``) asks ``GET /evaluation`` before a rollout; the
backtest runs here because the facade holds the market data and talks to the predictor. Both
versions forecast the most recent ``hours`` hours after BOTH base dates (the tag ``base_date`` on
each version; a model for base date D is trained on bars before D), so neither has seen them,
through the predictor's version-pinned inference, and are scored with the core's
:func:`btcforecast.evaluation.backtest_report` and :func:`btcforecast.metrics.pinball_loss`. The
facade reports figures; the operator decides (its ratios are in the resource's spec).
"""

from __future__ import annotations

import asyncio
import math
from datetime import date, datetime

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from btcforecast import registry
from btcforecast.errors import NotFound, ProjectError
from btcforecast.evaluation import backtest_report
from btcforecast.features import WINDOW, InsufficientHistoryError, windows_for_range
from btcforecast.market import is_synthetic, source_of
from btcforecast.metrics import pinball_loss
from facade.forecasts import Forecaster

MAX_HOURS = 8760
"""A year of hours: the most one evaluation backtests."""


class NoRecentData(ProjectError):
    """Too few hours after both versions' base dates to judge on (the API answers 409)."""


class VersionScores(BaseModel):
    version: str
    base_date: date | None
    pinball: float = Field(description="pinball loss over the quantiles both versions forecast (USD)")
    mae: float = Field(description="MAE of the point forecast (the median), USD")
    quantiles: list[float] = Field(description="the quantiles this version forecasts")
    coverage: float | None = Field(description="share of hours inside its interval; null: point-only")


class Evaluation(BaseModel):
    """Both versions scored on the same hours ``start`` .. ``end`` (UTC, inclusive)."""

    model: str
    candidate: VersionScores
    incumbent: VersionScores
    hours: int = Field(description="hours backtested")
    requested_hours: int
    start: datetime
    end: datetime
    quantiles: list[float] = Field(description="the quantiles the pinball loss is taken over")
    persistence_mae: float = Field(description="MAE of 'next close = last close' on the same hours")
    data_source: str
    synthetic: bool


def unseen_hours(
    index: pd.DatetimeIndex, base_dates: dict[str, date | None], hours: int, min_hours: int
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(first, last) of the most recent ``hours`` hours of ``index`` on or after every base date.

    NoRecentData when a version has no base date (its training data are unknown) or when fewer
    than ``min_hours`` such hours exist.
    """
    for version, base in base_dates.items():
        if base is None:
            raise NoRecentData(
                f"version {version} has no base_date tag: the hours it was not trained on are unknown"
            )
    first_unseen = pd.Timestamp(max(d for d in base_dates.values() if d is not None), tz="UTC")
    unseen = index[index >= first_unseen]
    if len(unseen) < min_hours:
        newest = ", ".join(f"{v}: {d}" for v, d in base_dates.items())
        raise NoRecentData(
            f"only {len(unseen)} hours of market data from {first_unseen:%Y-%m-%d} (the later base date; "
            f"{newest}) to the end of the data ({index[-1]:%Y-%m-%d %H:%M}); at least {min_hours} needed"
        )
    window = unseen[-hours:]
    return window[0], window[-1]


async def _base_date(forecaster: Forecaster, version: str) -> date | None:
    """The version's base date; VersionNotFoundError (404) for a version the registry lacks."""
    await asyncio.to_thread(registry.resolve, forecaster.mlflow, forecaster.model_name, version=version)
    return await forecaster.base_date(version)


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


async def evaluate(
    forecaster: Forecaster,
    *,
    candidate: str,
    incumbent: str,
    hours: int,
    min_hours: int,
    model: str | None = None,
) -> Evaluation:
    """Backtest ``candidate`` and ``incumbent`` on the same recent hours neither was trained on."""
    if model is not None and model != forecaster.model_name:
        raise NotFound(f"this facade evaluates model {forecaster.model_name!r}, not {model!r}")
    if not (1 <= min_hours <= hours <= MAX_HOURS):
        raise NoRecentData(f"need 1 <= min_hours <= hours <= {MAX_HOURS}; got {min_hours}, {hours}")
    versions = (candidate, incumbent)
    bases = {v: await _base_date(forecaster, v) for v in versions}
    frames = await forecaster.frames()
    start, end = unseen_hours(frames.bars.index, bases, hours, min_hours)
    try:
        windows, index = windows_for_range(frames.features, start, end, WINDOW)
    except InsufficientHistoryError as e:
        raise NoRecentData(f"cannot build windows for {start} .. {end}: {e}") from e
    predictions = await asyncio.gather(*(forecaster.predictor.infer(windows, version=v) for v in versions))
    common = sorted(set(predictions[0].quantiles) & set(predictions[1].quantiles))
    closes = frames.bars["close"]
    actual = closes.loc[index].to_numpy(dtype=np.float64)
    scores = []
    for version, forecast in zip(versions, predictions, strict=True):
        report = backtest_report(closes, index, forecast.values, forecast.quantiles)
        columns = [list(forecast.quantiles).index(q) for q in common]
        scores.append(
            VersionScores(
                version=version,
                base_date=bases[version],
                pinball=pinball_loss(actual, forecast.values[:, columns], common),
                mae=report.model.mae,
                quantiles=list(forecast.quantiles),
                coverage=_finite(report.interval.coverage) if report.interval else None,
            )
        )
        persistence_mae = report.persistence.mae
    return Evaluation(
        model=forecaster.model_name,
        candidate=scores[0],
        incumbent=scores[1],
        hours=len(index),
        requested_hours=hours,
        start=index[0].to_pydatetime(),
        end=index[-1].to_pydatetime(),
        quantiles=common,
        persistence_mae=persistence_mae,
        data_source=source_of(frames.bars) or "unknown",
        synthetic=is_synthetic(frames.bars),
    )
