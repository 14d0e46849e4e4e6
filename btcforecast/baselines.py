"""Baselines that a quantile forecast must beat, built only from what is known at forecast time.

A forecast for hour ``t`` is made from the bars before it (docs/architecture.md): the close of bar
``t`` itself is never used here. "Bars before" means positions in ``closes`` (the canonical hourly
frame); if the data has a gap, the bar before an hour is the last bar present.

- :func:`ex_ante_volatility`: the standard deviation of the hourly log returns over the
  ``lookback_hours`` bars before each hour, to split hours into calm/normal/volatile terciles
  (:func:`volatility_terciles`) so interval coverage can be checked per regime;
- :func:`naive_band`: the last close times the empirical quantiles of the last ``lookback_days``
  of hourly log returns, the band a quantile model has to beat on pinball loss.

Both are vectorised with pandas rolling windows (3,048 hours over a 13,000-bar series take a few
tens of milliseconds).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

HOURS_PER_DAY = 24


def _positions(closes: pd.Series, hours: pd.DatetimeIndex, need: int, what: str) -> np.ndarray:
    """Positions of ``hours`` in ``closes``; each needs ``need`` bars before it."""
    if not isinstance(closes, pd.Series) or not isinstance(closes.index, pd.DatetimeIndex):
        raise ValueError("closes must be a pandas Series indexed by hour")
    hours = pd.DatetimeIndex(hours)
    if len(hours) == 0:
        raise ValueError("no hours to forecast")
    positions = closes.index.get_indexer(hours)
    missing = np.flatnonzero(positions < 0)
    if missing.size:
        raise ValueError(f"hour {hours[missing[0]]} is not in the closes")
    short = np.flatnonzero(positions < need)
    if short.size:
        first = short[0]
        raise ValueError(f"hour {hours[first]} has {positions[first]} bars before it; {what} needs {need}")
    return positions


def _log_returns(closes: pd.Series) -> pd.Series:
    values = closes.to_numpy(dtype=np.float64)
    if not (np.isfinite(values) & (values > 0)).all():
        raise ValueError("closes must be finite and positive")
    return pd.Series(np.log(values)).diff()


def history_bars(lookback_days: int = 30) -> int:
    """Bars needed before an hour for :func:`naive_band` (one more close than returns)."""
    return lookback_days * HOURS_PER_DAY + 1


def ex_ante_volatility(closes: pd.Series, hours: pd.DatetimeIndex, lookback_hours: int = 24) -> np.ndarray:
    """Sample standard deviation (ddof 1) of the ``lookback_hours`` hourly log returns before each hour.

    For the hour at position ``p`` these are the returns ending at bars ``p - lookback_hours`` ..
    ``p - 1``, so ``lookback_hours + 1`` bars are needed before it; ``ValueError`` names the first
    hour without them (or an hour that is not in ``closes``).
    """
    if lookback_hours < 2:
        raise ValueError("lookback_hours must be at least 2")
    positions = _positions(closes, hours, lookback_hours + 1, f"a {lookback_hours}-hour volatility")
    std = _log_returns(closes).rolling(lookback_hours).std(ddof=1).to_numpy()
    return std[positions - 1]


def volatility_terciles(volatility: np.ndarray) -> np.ndarray:
    """0 (calm), 1 (normal) or 2 (volatile): cuts at the 1/3 and 2/3 quantiles of this sample.

    Calm is ``v <= cut1``, normal ``cut1 < v <= cut2``, volatile ``v > cut2``.
    """
    v = np.asarray(volatility, dtype=np.float64)
    if v.ndim != 1 or v.size == 0 or not np.isfinite(v).all():
        raise ValueError("volatility must be a non-empty 1-D array of finite values")
    cuts = np.quantile(v, [1.0 / 3.0, 2.0 / 3.0])
    return np.digitize(v, cuts, right=True).astype(np.int64)


def naive_band(
    closes: pd.Series, hours: pd.DatetimeIndex, quantiles: Sequence[float], lookback_days: int = 30
) -> np.ndarray:
    """``[N, Q]`` prices: the last close times ``exp`` of the empirical quantiles (numpy's linear
    interpolation) of the ``lookback_days * 24`` hourly log returns before each hour.

    Needs :func:`history_bars` bars before every hour; ``ValueError`` names the first hour without.
    """
    q = np.asarray(quantiles, dtype=np.float64)
    if q.ndim != 1 or q.size == 0 or not ((q > 0) & (q < 1)).all():
        raise ValueError(f"quantiles must be a non-empty list of levels in (0, 1); got {list(q)}")
    if lookback_days < 1:
        raise ValueError("lookback_days must be at least 1")
    window = lookback_days * HOURS_PER_DAY
    positions = _positions(closes, hours, history_bars(lookback_days), f"a {lookback_days}-day naive band")
    # Only the stretch of bars the hours need, so a short backtest on a long series stays cheap.
    start = int(positions.min()) - window - 1
    stop = int(positions.max())
    returns = _log_returns(closes.iloc[start:stop]).rolling(window)
    at = positions - 1 - start
    last_close = closes.to_numpy(dtype=np.float64)[positions - 1]
    columns = [returns.quantile(level, interpolation="linear").to_numpy()[at] for level in q]
    return last_close[:, None] * np.exp(np.column_stack(columns))
