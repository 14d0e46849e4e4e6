"""Baselines that a quantile forecast must beat, built only from what is known at forecast time.

A forecast for hour ``t`` is made from the bars before it (docs/architecture.md): the close of bar
``t`` itself is never used here. "Bars before" means positions in ``closes`` (the canonical hourly
frame); if the data has a gap, the bar before an hour is the last bar present.

- :func:`ex_ante_volatility`: the standard deviation of the hourly log returns over the
  ``lookback_hours`` bars before each hour, to split hours into calm/normal/volatile terciles
  (:func:`volatility_terciles`) so interval coverage can be checked per regime;
- :func:`naive_band`: the last close times the empirical quantiles of the last ``lookback_days``
  of hourly log returns, the band a quantile model has to beat on pinball loss.

Both are pandas rolling windows. The functions compute them for one request's hours (the stretch of
bars those hours need); :class:`Baselines` computes them once for every bar of a series and slices
them per request, for a service that scores many forecasts on the same data (the facade). Both give
the same figures: a rolling quantile is an order statistic, whatever bars came before the window.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pandas as pd

HOURS_PER_DAY = 24


def as_hours(hours: pd.DatetimeIndex | Sequence[pd.Timestamp]) -> pd.DatetimeIndex:
    """``hours`` as a DatetimeIndex (without rebuilding one: that costs a millisecond per call)."""
    return hours if isinstance(hours, pd.DatetimeIndex) else pd.DatetimeIndex(hours)


def bar_positions(closes: pd.Series, hours: pd.DatetimeIndex) -> np.ndarray:
    """Positions of ``hours`` in ``closes``; ``ValueError`` names an hour that is not there."""
    if not isinstance(closes, pd.Series) or not isinstance(closes.index, pd.DatetimeIndex):
        raise ValueError("closes must be a pandas Series indexed by hour")
    hours = as_hours(hours)
    if len(hours) == 0:
        raise ValueError("no hours to forecast")
    index = closes.index
    if index.dtype == hours.dtype and index.is_monotonic_increasing:
        # a binary search on the int64 times: get_indexer costs about 1 ms for 3,000 hours
        stamps = index.asi8
        wanted = hours.asi8
        positions = np.searchsorted(stamps, wanted)
        found = positions < len(stamps)
        found[found] = stamps[positions[found]] == wanted[found]
        positions = np.where(found, positions, -1)
    else:
        positions = index.get_indexer(hours)
    missing = np.flatnonzero(positions < 0)
    if missing.size:
        raise ValueError(f"hour {hours[missing[0]]} is not in the closes")
    return positions


def _need(hours: pd.DatetimeIndex, positions: np.ndarray, need: int, what: str) -> None:
    short = np.flatnonzero(positions < need)
    if short.size:
        first = short[0]
        raise ValueError(f"hour {hours[first]} has {positions[first]} bars before it; {what} needs {need}")


def _positions(closes: pd.Series, hours: pd.DatetimeIndex, need: int, what: str) -> np.ndarray:
    """Positions of ``hours`` in ``closes``; each needs ``need`` bars before it."""
    positions = bar_positions(closes, hours)
    _need(as_hours(hours), positions, need, what)
    return positions


def _log_returns(closes: pd.Series) -> pd.Series:
    values = closes.to_numpy(dtype=np.float64)
    if not (np.isfinite(values) & (values > 0)).all():
        raise ValueError("closes must be finite and positive")
    return pd.Series(np.log(values)).diff()


def _quantile_levels(quantiles: Sequence[float]) -> np.ndarray:
    q = np.asarray(quantiles, dtype=np.float64)
    if q.ndim != 1 or q.size == 0 or not ((q > 0) & (q < 1)).all():
        raise ValueError(f"quantiles must be a non-empty list of levels in (0, 1); got {list(q)}")
    return q


def _rolling_quantiles(returns: pd.Series, window: int, q: np.ndarray) -> np.ndarray:
    """``[len(returns), Q]``: numpy-style linear quantiles of each ``window`` returns ending at a row."""
    rolling = returns.rolling(window)
    return np.column_stack([rolling.quantile(level, interpolation="linear").to_numpy() for level in q])


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
    q = _quantile_levels(quantiles)
    if lookback_days < 1:
        raise ValueError("lookback_days must be at least 1")
    window = lookback_days * HOURS_PER_DAY
    positions = _positions(closes, hours, history_bars(lookback_days), f"a {lookback_days}-day naive band")
    # Only the stretch of bars the hours need, so a short backtest on a long series stays cheap.
    start = int(positions.min()) - window - 1
    stop = int(positions.max())
    quantile_returns = _rolling_quantiles(_log_returns(closes.iloc[start:stop]), window, q)
    last_close = closes.to_numpy(dtype=np.float64)[positions - 1]
    return last_close[:, None] * np.exp(quantile_returns[positions - 1 - start])


class Baselines:
    """The baselines of one closes series, computed once for every bar and sliced per request.

    Each rolling series is computed on first use (every bar: about 35 ms per quantile level for
    14,000 bars) and kept; afterwards a request's band or volatility is an index into it. Safe to
    share between threads (one computes, the others wait for it). The figures equal those of
    :func:`ex_ante_volatility` and :func:`naive_band`.
    """

    def __init__(self, closes: pd.Series) -> None:
        self.closes = closes
        self._values = closes.to_numpy(dtype=np.float64)
        self._returns = _log_returns(closes)
        self._lock = threading.Lock()
        self._volatility: dict[int, np.ndarray] = {}
        self._quantiles: dict[tuple[int, float], np.ndarray] = {}

    def positions(self, hours: pd.DatetimeIndex) -> np.ndarray:
        """Positions of ``hours`` in the closes (see :func:`bar_positions`)."""
        return bar_positions(self.closes, hours)

    def volatility(
        self, hours: pd.DatetimeIndex, lookback_hours: int = 24, positions: np.ndarray | None = None
    ) -> np.ndarray:
        """:func:`ex_ante_volatility` of ``hours`` (``positions``: theirs, if already known)."""
        if lookback_hours < 2:
            raise ValueError("lookback_hours must be at least 2")
        positions = self.positions(hours) if positions is None else positions
        _need(as_hours(hours), positions, lookback_hours + 1, f"a {lookback_hours}-hour volatility")
        with self._lock:
            std = self._volatility.get(lookback_hours)
            if std is None:
                std = self._returns.rolling(lookback_hours).std(ddof=1).to_numpy()
                self._volatility[lookback_hours] = std
        return std[positions - 1]

    def naive_band(
        self,
        hours: pd.DatetimeIndex,
        quantiles: Sequence[float],
        lookback_days: int = 30,
        positions: np.ndarray | None = None,
    ) -> np.ndarray:
        """:func:`naive_band` of ``hours`` (``positions``: theirs, if already known)."""
        q = _quantile_levels(quantiles)
        if lookback_days < 1:
            raise ValueError("lookback_days must be at least 1")
        positions = self.positions(hours) if positions is None else positions
        _need(as_hours(hours), positions, history_bars(lookback_days), f"a {lookback_days}-day naive band")
        window = lookback_days * HOURS_PER_DAY
        columns = [self._rolling_quantile(window, float(level))[positions - 1] for level in q]
        return self._values[positions - 1][:, None] * np.exp(np.column_stack(columns))

    def _rolling_quantile(self, window: int, level: float) -> np.ndarray:
        with self._lock:
            values = self._quantiles.get((window, level))
            if values is None:
                values = _rolling_quantiles(self._returns, window, np.array([level]))[:, 0]
                self._quantiles[(window, level)] = values
        return values
