from __future__ import annotations

import json
import math

import numpy as np
import orjson
import pandas as pd
import pytest

from btcforecast.baselines import ex_ante_volatility, naive_band, volatility_terciles
from btcforecast.evaluation import backtest_report
from btcforecast.metrics import diebold_mariano, forecast_metrics, interval_metrics, persistence_metrics

QUANTILES = [0.1, 0.5, 0.9]


def hourly_closes(n: int, seed: int = 1) -> pd.Series:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2025-01-01", periods=n, freq="h", tz="UTC", name="timestamp")
    return pd.Series(100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n))), index=index, name="close")


def spread_around(closes: pd.Series, hours: pd.DatetimeIndex, seed: int = 2) -> np.ndarray:
    """A made-up quantile forecast: a noisy median with a band of +/- 1% around it."""
    rng = np.random.default_rng(seed)
    previous = closes.shift(1).loc[hours].to_numpy()
    median = previous * (1 + rng.normal(0.0, 0.002, len(hours)))
    return np.column_stack([median * 0.99, median, median * 1.01])


def test_the_report_scores_the_median_against_persistence() -> None:
    closes = hourly_closes(900)
    hours = closes.index[800:]
    predictions = spread_around(closes, hours)
    report = backtest_report(closes, hours, predictions, QUANTILES)
    actual, previous = closes.iloc[800:].to_numpy(), closes.iloc[799:-1].to_numpy()
    assert report.model == forecast_metrics(actual, predictions[:, 1], previous)
    assert report.persistence == persistence_metrics(actual, previous)
    assert report.significance == diebold_mariano(predictions[:, 1] - actual, previous - actual)


def test_the_report_scores_the_interval_and_the_naive_band_on_the_same_terciles() -> None:
    closes = hourly_closes(900)
    hours = closes.index[800:]
    predictions = spread_around(closes, hours)
    report = backtest_report(closes, hours, predictions, QUANTILES)
    actual = closes.loc[hours].to_numpy()
    terciles = volatility_terciles(ex_ante_volatility(closes, hours, 24))
    band = naive_band(closes, hours, QUANTILES, 30)
    assert report.interval == interval_metrics(actual, predictions, QUANTILES, terciles)
    assert report.naive_band == interval_metrics(actual, band, QUANTILES, terciles)
    assert report.interval is not None and report.naive_band is not None
    assert report.pinball_ratio == pytest.approx(report.interval.pinball / report.naive_band.pinball)
    assert report.interval.level == 0.8


def test_the_naive_band_scored_as_a_model_has_pinball_ratio_one(market_bars: pd.DataFrame) -> None:
    closes = market_bars["close"]
    hours = closes.index[-3048:]
    report = backtest_report(closes, hours, naive_band(closes, hours, QUANTILES), QUANTILES)
    assert report.pinball_ratio == pytest.approx(1.0)
    assert report.interval == report.naive_band


def test_a_point_only_model_has_no_interval_figures() -> None:
    closes = hourly_closes(900)
    hours = closes.index[800:]
    median = spread_around(closes, hours)[:, 1]
    report = backtest_report(closes, hours, median[:, None], [0.5])
    assert (report.interval, report.naive_band, report.pinball_ratio) == (None, None, None)
    assert report.significance is not None
    assert backtest_report(closes, hours, median, [0.5]) == report  # 1-D accepted for one quantile


def test_without_thirty_days_of_history_there_is_no_naive_band_but_an_interval() -> None:
    closes = hourly_closes(200)
    hours = closes.index[100:]
    report = backtest_report(closes, hours, spread_around(closes, hours), QUANTILES)
    assert report.interval is not None
    assert (report.naive_band, report.pinball_ratio) == (None, None)


def test_fewer_than_three_hours_have_no_significance() -> None:
    closes = hourly_closes(900)
    hours = closes.index[800:802]
    report = backtest_report(closes, hours, spread_around(closes, hours), QUANTILES)
    assert report.significance is None
    assert report.model.n == 2


def test_the_report_needs_the_median() -> None:
    closes = hourly_closes(100)
    hours = closes.index[50:60]
    with pytest.raises(ValueError, match="median"):
        backtest_report(closes, hours, np.ones((10, 2)), [0.1, 0.9])


def test_the_report_refuses_predictions_of_the_wrong_shape() -> None:
    closes = hourly_closes(100)
    hours = closes.index[50:60]
    with pytest.raises(ValueError, match=r"\[N, Q\] = \[10, 3\]"):
        backtest_report(closes, hours, np.ones((9, 3)), QUANTILES)


def test_the_report_names_an_hour_without_a_bar_before_it() -> None:
    closes = hourly_closes(100)
    with pytest.raises(ValueError, match="no bar before it"):
        backtest_report(closes, closes.index[:5], np.ones(5), [0.5])


def test_undefined_figures_serialise_as_null() -> None:
    closes = hourly_closes(900)
    closes.iloc[801:804] = closes.iloc[800]  # the price never moves over the backtest
    hours = closes.index[801:804]
    report = backtest_report(closes, hours, spread_around(closes, hours), QUANTILES)
    assert math.isnan(report.persistence.directional_accuracy)
    payload = orjson.loads(orjson.dumps(report.model_dump()))
    assert payload["persistence"]["directional_accuracy"] is None
    assert json.loads(report.model_dump_json())["model"]["directional_accuracy"] is None
