from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from btcforecast.baselines import (
    Baselines,
    ex_ante_volatility,
    history_bars,
    naive_band,
    volatility_terciles,
)
from btcforecast.evaluation import backtest_report

QUANTILES = [0.1, 0.5, 0.9]


def hourly_closes(n: int, seed: int = 0, start: str = "2025-01-01") -> pd.Series:
    rng = np.random.default_rng(seed)
    index = pd.date_range(start, periods=n, freq="h", tz="UTC", name="timestamp")
    return pd.Series(100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n))), index=index, name="close")


# --- ex-ante volatility ----------------------------------------------------------------------------


def test_ex_ante_volatility_is_the_std_of_the_returns_before_the_hour() -> None:
    closes = pd.Series(
        [100.0, 101.0, 99.0, 102.0, 104.0, 50.0],
        index=pd.date_range("2025-01-01", periods=6, freq="h", tz="UTC"),
    )
    hour = closes.index[4]  # sees closes 0..3 only: returns 0->1, 1->2, 2->3
    expected = np.std(np.diff(np.log([100.0, 101.0, 99.0, 102.0])), ddof=1)
    assert ex_ante_volatility(closes, pd.DatetimeIndex([hour]), lookback_hours=3)[0] == pytest.approx(
        expected
    )


def test_ex_ante_volatility_never_uses_the_close_of_the_hour_or_later() -> None:
    closes = hourly_closes(200)
    hours = closes.index[100:150]
    before = ex_ante_volatility(closes, hours)
    shocked = closes.copy()
    shocked.iloc[100:] *= 3.0  # the predicted hours and everything after them
    after = ex_ante_volatility(shocked, hours)
    assert after[0] == before[0]
    assert not np.allclose(after, before)  # later hours do see the earlier shocked bars


def test_ex_ante_volatility_names_the_first_hour_without_enough_history() -> None:
    closes = hourly_closes(60)
    hours = closes.index[20:40]
    with pytest.raises(ValueError, match=re.escape(str(closes.index[20]))):
        ex_ante_volatility(closes, hours, lookback_hours=24)
    assert ex_ante_volatility(closes, closes.index[25:40], lookback_hours=24).shape == (15,)


def test_ex_ante_volatility_names_an_hour_missing_from_the_closes() -> None:
    closes = hourly_closes(60)
    missing = closes.index[-1] + pd.Timedelta(hours=1)
    with pytest.raises(ValueError, match="not in the closes"):
        ex_ante_volatility(closes, pd.DatetimeIndex([closes.index[40], missing]))


# --- terciles --------------------------------------------------------------------------------------


def test_volatility_terciles_cut_the_sample_in_three() -> None:
    volatility = np.array([9.0, 1.0, 5.0, 2.0, 8.0, 4.0, 3.0, 7.0, 6.0])
    assert volatility_terciles(volatility).tolist() == [2, 0, 1, 0, 2, 1, 0, 2, 1]


def test_volatility_terciles_refuse_nan() -> None:
    with pytest.raises(ValueError, match="finite"):
        volatility_terciles(np.array([1.0, np.nan, 2.0]))


# --- naive band ------------------------------------------------------------------------------------


def test_naive_band_is_the_last_close_times_the_empirical_return_quantiles() -> None:
    closes = hourly_closes(100)
    hours = closes.index[[30, 57, 99]]
    band = naive_band(closes, hours, QUANTILES, lookback_days=1)
    values = closes.to_numpy()
    for row, p in enumerate([30, 57, 99]):
        returns = np.diff(np.log(values[p - 25 : p]))  # the 24 returns ending at the bar before
        assert returns.size == 24
        expected = values[p - 1] * np.exp(np.quantile(returns, QUANTILES))
        np.testing.assert_allclose(band[row], expected, rtol=1e-12)


def test_naive_band_never_uses_the_close_of_the_hour_or_later() -> None:
    closes = hourly_closes(100)
    hours = closes.index[[60]]
    before = naive_band(closes, hours, QUANTILES, lookback_days=1)
    shocked = closes.copy()
    shocked.iloc[60:] *= 2.0
    np.testing.assert_array_equal(naive_band(shocked, hours, QUANTILES, lookback_days=1), before)


def test_naive_band_is_ordered_like_its_quantiles() -> None:
    closes = hourly_closes(300)
    band = naive_band(closes, closes.index[100:], QUANTILES, lookback_days=2)
    assert band.shape == (200, 3)
    assert (np.diff(band, axis=1) >= 0).all()


def test_naive_band_names_the_first_hour_without_thirty_days_before_it() -> None:
    closes = hourly_closes(800)
    assert history_bars(30) == 721
    with pytest.raises(ValueError, match=re.escape(str(closes.index[720]))):
        naive_band(closes, closes.index[720:], QUANTILES)
    assert naive_band(closes, closes.index[721:], QUANTILES).shape == (79, 3)


def test_naive_band_counts_bars_not_clock_hours_across_a_gap() -> None:
    closes = hourly_closes(60)
    gapped = closes.drop(closes.index[40:45])  # five missing hours
    hour = gapped.index[40]  # the bar after the gap
    band = naive_band(gapped, pd.DatetimeIndex([hour]), [0.5], lookback_days=1)
    values = gapped.to_numpy()
    expected = values[39] * np.exp(np.median(np.diff(np.log(values[15:40]))))
    assert band[0, 0] == pytest.approx(expected)


def test_naive_band_on_the_market_data(market_bars: pd.DataFrame) -> None:
    closes = market_bars["close"]
    hours = closes.index[-3048:]
    band = naive_band(closes, hours, QUANTILES)
    assert band.shape == (3048, 3)
    assert np.isfinite(band).all()
    assert (band[:, 0] < band[:, 2]).all()


# --- baselines computed once for every bar ----------------------------------------------------------
# Baselines computes each rolling series over the whole series and slices it; the functions above
# compute it for the stretch one request needs. On the market data (real with BTC_DATA_CSV) they agree.


def flat(tree: dict[str, object], prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.fixture(scope="module")
def whole(market_bars: pd.DataFrame) -> Baselines:
    return Baselines(market_bars["close"])


@pytest.mark.parametrize("span", [slice(-3048, None), slice(-3048, -2830), slice(721, 900), slice(-1, None)])
def test_baselines_give_the_naive_band_of_the_function(whole: Baselines, span: slice) -> None:
    hours = whole.closes.index[span]
    np.testing.assert_allclose(
        whole.naive_band(hours, QUANTILES), naive_band(whole.closes, hours, QUANTILES), rtol=1e-9, atol=0
    )


@pytest.mark.parametrize("span", [slice(-3048, None), slice(25, 400)])
def test_baselines_give_the_volatility_of_the_function(whole: Baselines, span: slice) -> None:
    hours = whole.closes.index[span]
    np.testing.assert_allclose(
        whole.volatility(hours), ex_ante_volatility(whole.closes, hours), rtol=1e-9, atol=0
    )


def test_baselines_give_the_same_backtest_report(whole: Baselines) -> None:
    closes = whole.closes
    hours = closes.index[-3048:]
    last = closes.to_numpy()[-3049:-1]
    predictions = np.column_stack([last * 0.99, last, last * 1.01])
    alone = backtest_report(closes, hours, predictions, QUANTILES)
    shared = backtest_report(closes, hours, predictions, QUANTILES, baselines=whole)
    assert alone.naive_band is not None
    expected, got = flat(alone.model_dump()), flat(shared.model_dump())
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == (pytest.approx(value, rel=1e-9) if isinstance(value, float) else value), key


def test_baselines_refuse_hours_without_the_history_they_need(whole: Baselines) -> None:
    hours = whole.closes.index[700:800]
    with pytest.raises(ValueError, match=re.escape(str(hours[0]))):
        whole.naive_band(hours, QUANTILES)


def test_baselines_of_other_closes_are_refused(whole: Baselines) -> None:
    closes = whole.closes.copy()
    hours = closes.index[-10:]
    with pytest.raises(ValueError, match="same closes"):
        backtest_report(closes, hours, np.ones((10, 3)), QUANTILES, baselines=whole)
