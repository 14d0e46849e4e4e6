"""One backtest report for a forecast, the same wherever a forecast is judged.

The facade's metrics, the registry's per-version evaluation and the operator's quality gate all call
:func:`backtest_report`, so a figure means the same thing everywhere: the point forecast (the median)
beside persistence, whether it is significantly better (Diebold-Mariano on absolute errors), and for
a quantile model its 80% interval and pinball loss beside the naive band.

Undefined figures are ``NaN`` (see btcforecast.metrics); ``None`` means "not computed": no interval
for a point-only model (Q == 1), no significance with fewer than 3 hours, and no naive band (nor
``pinball_ratio``) when the data holds fewer than 30 days of bars before the first hour.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel

from btcforecast.baselines import (
    Baselines,
    as_hours,
    bar_positions,
    ex_ante_volatility,
    history_bars,
    naive_band,
    volatility_terciles,
)
from btcforecast.metrics import (
    DieboldMariano,
    ForecastMetrics,
    IntervalMetrics,
    diebold_mariano,
    forecast_metrics,
    interval_metrics,
    persistence_metrics,
)

POINT_QUANTILE = 0.5
"""The quantile served as the point forecast (btcforecast.model.POINT_QUANTILE; not imported, to keep
torch out of this module)."""
VOLATILITY_LOOKBACK_HOURS = 24
NAIVE_BAND_LOOKBACK_DAYS = 30


class BacktestReport(BaseModel):
    model: ForecastMetrics
    """The point forecast (median) against the actual closes."""
    persistence: ForecastMetrics
    significance: DieboldMariano | None
    """Model against persistence, absolute errors; None with fewer than 3 hours."""
    interval: IntervalMetrics | None
    """The model's interval (lowest..highest quantile); None for a point-only model."""
    naive_band: IntervalMetrics | None
    """The naive band for the same quantiles and terciles; None for a point-only model or without
    30 days of bars before the first hour."""
    pinball_ratio: float | None
    """Model pinball loss / naive band pinball loss (< 1: the model beats the band)."""


def actual_and_previous(
    closes: pd.Series, hours: pd.DatetimeIndex, positions: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The close of each hour and of the bar before it (the last close the forecast saw)."""
    hours = as_hours(hours)
    positions = bar_positions(closes, hours) if positions is None else positions
    first = np.flatnonzero(positions < 1)
    if first.size:
        raise ValueError(f"hour {hours[first[0]]} has no bar before it")
    values = closes.to_numpy(dtype=np.float64)
    return values[positions], values[positions - 1]


def backtest_report(
    closes: pd.Series,
    hours: pd.DatetimeIndex,
    quantile_predictions: np.ndarray,
    quantiles: Sequence[float],
    *,
    baselines: Baselines | None = None,
) -> BacktestReport:
    """Score ``[N, Q]`` forecasts of the close at ``hours`` (columns in the order of ``quantiles``).

    The point forecast is the 0.5 column (which must exist). ``closes`` must hold each hour and the
    bar before it; the interval figures (Q >= 2) also need 25 bars before the first hour for the
    ex-ante volatility terciles. A 1-D array is accepted for a single quantile.

    ``baselines`` (built on the same ``closes``) lets a service that scores many forecasts on one
    series compute the volatility and the naive band once for every bar; the figures are the same.
    """
    q = [float(level) for level in quantiles]
    predictions = np.asarray(quantile_predictions, dtype=np.float64)
    if predictions.ndim == 1 and len(q) == 1:
        predictions = predictions[:, None]
    hours = as_hours(hours)
    if predictions.shape != (len(hours), len(q)):
        raise ValueError(
            f"quantile predictions must have shape [N, Q] = [{len(hours)}, {len(q)}]; "
            f"got {list(predictions.shape)}"
        )
    if POINT_QUANTILE not in q:
        raise ValueError(f"quantiles {q} lack the median ({POINT_QUANTILE}), the point forecast")
    if baselines is not None and baselines.closes is not closes:
        raise ValueError("baselines must be built on the same closes as the ones scored")
    positions = bar_positions(closes, hours)
    actual, previous = actual_and_previous(closes, hours, positions)
    point = predictions[:, q.index(POINT_QUANTILE)]
    significance = None
    if len(hours) >= 3:
        significance = diebold_mariano(point - actual, previous - actual, loss="absolute")
    interval = band = ratio = None
    if len(q) >= 2:
        if baselines is None:
            volatility = ex_ante_volatility(closes, hours, VOLATILITY_LOOKBACK_HOURS)
        else:
            volatility = baselines.volatility(hours, VOLATILITY_LOOKBACK_HOURS, positions)
        terciles = volatility_terciles(volatility)
        interval = interval_metrics(actual, predictions, q, terciles)
        if int(positions.min()) >= history_bars(NAIVE_BAND_LOOKBACK_DAYS):
            if baselines is None:
                band_prices = naive_band(closes, hours, q, NAIVE_BAND_LOOKBACK_DAYS)
            else:
                band_prices = baselines.naive_band(hours, q, NAIVE_BAND_LOOKBACK_DAYS, positions)
            band = interval_metrics(actual, band_prices, q, terciles)
            ratio = interval.pinball / band.pinball if band.pinball > 0 else float("nan")
    return BacktestReport(
        model=forecast_metrics(actual, point, previous),
        persistence=persistence_metrics(actual, previous),
        significance=significance,
        interval=interval,
        naive_band=band,
        pinball_ratio=ratio,
    )
