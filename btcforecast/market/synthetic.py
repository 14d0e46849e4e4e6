"""Deterministic synthetic BTC bars, for when no real data is configured and for tests.

Real hourly returns cluster in volatility (calm weeks, then violent days), so the generator draws
returns from a GARCH(1,1) process with fat-tailed innovations; a weak pull toward a slowly rising
trend keeps the price at a realistic BTC level (roughly 40k-110k USD over 2024-2025) instead of
drifting off. Volume follows volatility and the hour of day. The same seed and range always give
the same bars, and the frame is labelled ``synthetic`` so it is never mistaken for the market.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from btcforecast.market.bars import DEFAULT_END, DEFAULT_START, SYNTHETIC, make_bars

DEFAULT_SEED = 20240101

# GARCH(1,1) on hourly log returns: long-run hourly volatility about 0.6 %.
_LONG_RUN_VOL = 0.006
_ALPHA = 0.08
_BETA = 0.90
_OMEGA = _LONG_RUN_VOL**2 * (1.0 - _ALPHA - _BETA)
_T_DOF = 5.0  # Student-t degrees of freedom: fat tails like real crypto returns
_PULL = 0.0015  # hourly mean reversion of log price toward the trend
_TREND_FROM, _TREND_TO = 45_000.0, 95_000.0  # trend level across the default period
_TREND_HOURS = int((DEFAULT_END - DEFAULT_START) / pd.Timedelta(hours=1))
_BASE_VOLUME = 600.0  # BTC per hour in a calm hour


def _as_utc(ts: str | pd.Timestamp) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def generate_bars(
    start: str | pd.Timestamp = DEFAULT_START,
    end: str | pd.Timestamp = DEFAULT_END,
    *,
    seed: int = DEFAULT_SEED,
) -> pd.DataFrame:
    """Hourly bars from ``start`` to ``end`` inclusive (UTC; naive times mean UTC), valid OHLCV.

    The path depends only on ``seed`` and the number of hours, so a given range is reproducible.
    """
    first, last = _as_utc(start).ceil("h"), _as_utc(end).floor("h")
    index = pd.date_range(first, last, freq="h") if last >= first else pd.DatetimeIndex([], tz="UTC")
    n = len(index)
    rng = np.random.default_rng(seed)
    shocks = rng.standard_t(_T_DOF, size=n) / np.sqrt(_T_DOF / (_T_DOF - 2.0))
    wick_up, wick_down = np.abs(rng.normal(size=n)), np.abs(rng.normal(size=n))
    volume_noise = rng.lognormal(mean=0.0, sigma=0.35, size=n)

    hours_from_start = (index - DEFAULT_START) / pd.Timedelta(hours=1)
    progress = np.clip(np.asarray(hours_from_start, dtype="float64") / _TREND_HOURS, 0.0, 1.0)
    trend = np.log(_TREND_FROM) + progress * (np.log(_TREND_TO) - np.log(_TREND_FROM))

    log_close = np.empty(n)
    sigma = np.empty(n)
    variance, last_return = _LONG_RUN_VOL**2, 0.0
    level = trend[0] if n else 0.0
    for t in range(n):
        variance = _OMEGA + _ALPHA * last_return**2 + _BETA * variance
        sigma[t] = np.sqrt(variance)
        last_return = sigma[t] * shocks[t] + _PULL * (trend[t] - level)
        level += last_return
        log_close[t] = level

    close = np.exp(log_close)
    open_ = np.exp(np.concatenate(([trend[0]], log_close[:-1]))) if n else close.copy()
    high = np.maximum(open_, close) * np.exp(0.5 * sigma * wick_up)
    low = np.minimum(open_, close) * np.exp(-0.5 * sigma * wick_down)
    hour = np.asarray(index.hour, dtype="float64")
    seasonal = 1.0 + 0.3 * np.sin(2.0 * np.pi * (hour - 9.0) / 24.0)  # busiest in US/EU overlap
    activity = 1.0 + 2.0 * np.abs(log_close - np.log(open_)) / _LONG_RUN_VOL / 3.0
    volume = _BASE_VOLUME * seasonal * activity * volume_noise
    values = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
    return make_bars(index, values, source=SYNTHETIC)
