"""The dashboard's page data and tables as plain functions on small known series, and its route offline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from btcforecast.evaluation import backtest_report
from btcforecast.market import LocalParquetStore
from facade.api.routes.dashboard import cumulative_gain, metrics_tables, page_data, summary
from facade.forecasts import Forecast, Part
from tests.facade.inprocess import offline_facade, offline_settings

QUANTILES = (0.1, 0.5, 0.9)


def test_cumulative_gain_sums_persistence_error_minus_model_error() -> None:
    actual = np.array([10.0, 12.0, 11.0, 11.0])
    previous = np.array([9.0, 10.0, 12.0, 11.0])  # persistence errors 1, 2, 1, 0
    predicted = np.array([10.0, 11.0, 12.0, 12.0])  # model errors 0, 1, 1, 1
    assert cumulative_gain(actual, predicted, previous).tolist() == [1.0, 2.0, 2.0, 1.0]


def test_cumulative_gain_of_persistence_itself_stays_at_zero() -> None:
    actual = np.array([5.0, 7.0, 6.0])
    previous = np.array([4.0, 5.0, 7.0])
    assert cumulative_gain(actual, previous, previous).tolist() == [0.0, 0.0, 0.0]


def test_cumulative_gain_ends_at_hours_times_the_mae_difference() -> None:
    rng = np.random.default_rng(0)
    actual = 100 + rng.normal(size=50).cumsum()
    previous = np.concatenate([[100.0], actual[:-1]])
    predicted = previous + rng.normal(scale=0.5, size=50)
    gain = cumulative_gain(actual, predicted, previous)
    mae_gap = np.abs(previous - actual).mean() - np.abs(predicted - actual).mean()
    assert gain[-1] == pytest.approx(50 * mae_gap)


# --- page data over a small stitched forecast --------------------------------------------------
@pytest.fixture
def closes() -> pd.Series:
    index = pd.date_range("2025-03-01", periods=60, freq="h", tz="UTC")
    return pd.Series(100.0 + np.sin(np.arange(60) / 3.0) * 5 + np.arange(60) * 0.1, index=index)


def part(closes: pd.Series, alias: str, version: str, start: int, stop: int, *, interval: bool) -> Part:
    hours = closes.index[start:stop]
    previous = closes.to_numpy()[start - 1 : stop - 1]
    median = previous + 0.25
    if interval:
        quantiles = np.stack([median - 2.0, median, median + 2.0], axis=1)
        levels: tuple[float, ...] = QUANTILES
        lower, upper = quantiles[:, 0], quantiles[:, 2]
    else:
        quantiles, levels, lower, upper = median[:, None], (0.5,), None, None
    report = backtest_report(closes, hours, quantiles, levels)
    return Part(alias, version, hours, median, lower, upper, quantiles, report, levels)


@pytest.fixture
def forecast(closes: pd.Series) -> Forecast:
    first = part(closes, "backtest_20250301", "3", 30, 45, interval=True)
    second = part(closes, "backtest_20250302", "4", 45, 60, interval=False)
    hours = closes.index[30:60]
    overall = backtest_report(closes, hours, np.concatenate([first.predictions, second.predictions]), [0.5])
    return Forecast(hours[0], hours[-1], [first, second], overall, "test", False)


def test_page_data_spans_the_champion_hours(closes: pd.Series, forecast: Forecast) -> None:
    data = page_data(closes, forecast)
    assert data["t"][0] == int(closes.index[30].timestamp())
    assert data["t"][-1] == int(closes.index[59].timestamp())
    assert len(data["t"]) == len(data["close"]) == len(data["prediction"]) == len(data["gain"]) == 30
    assert data["close"] == [round(v, 2) for v in closes.iloc[30:].tolist()]


def test_page_data_carries_the_band_only_where_a_version_has_one(
    closes: pd.Series, forecast: Forecast
) -> None:
    data = page_data(closes, forecast)
    first = forecast.parts[0]
    assert data["lower"][:15] == [round(v, 2) for v in first.lower.tolist()]  # type: ignore[union-attr]
    assert data["upper"][:15] == [round(v, 2) for v in first.upper.tolist()]  # type: ignore[union-attr]
    assert data["lower"][15:] == [None] * 15 and data["upper"][15:] == [None] * 15  # point-only version
    assert None not in data["prediction"]


def test_page_data_marks_where_each_alias_takes_over(closes: pd.Series, forecast: Forecast) -> None:
    assert page_data(closes, forecast)["boundaries"] == [
        {"t": int(closes.index[30].timestamp()), "alias": "backtest_20250301", "version": "3"},
        {"t": int(closes.index[45].timestamp()), "alias": "backtest_20250302", "version": "4"},
    ]


def test_page_data_gain_is_the_cumulative_error_difference_over_all_parts(
    closes: pd.Series, forecast: Forecast
) -> None:
    actual = closes.to_numpy()[30:60]
    previous = closes.to_numpy()[29:59]
    predicted = np.concatenate([p.predictions for p in forecast.parts])
    expected = cumulative_gain(actual, predicted, previous)
    assert page_data(closes, forecast)["gain"] == [round(v, 2) for v in expected.tolist()]


def test_page_data_without_a_forecast_shows_the_close_alone(closes: pd.Series) -> None:
    data = page_data(closes, None)
    assert len(data["t"]) == 60 and None not in data["close"]
    assert set(data["prediction"]) == set(data["lower"]) == set(data["gain"]) == {None}
    assert data["boundaries"] == []


# --- tables ------------------------------------------------------------------------------------
def column(table_html: str, table_id: str, col: str) -> list[str]:
    table = re.search(rf'<table id="{table_id}">.*?</table>', table_html, re.S)
    assert table, table_html
    return re.findall(rf'<td data-col="{col}">([^<]*)</td>', table.group(0))


def test_the_interval_table_gives_each_alias_its_coverage(forecast: Forecast) -> None:
    tables = metrics_tables(forecast, None)
    assert column(tables, "intervals", "alias") == ["backtest_20250301", "backtest_20250302", "overall"]
    coverage = forecast.parts[0].metrics.interval.coverage  # type: ignore[union-attr]
    assert column(tables, "intervals", "coverage") == [f"{coverage * 100:.1f}", "n/a", "n/a"]


def test_the_point_table_gives_the_significance_against_persistence(forecast: Forecast) -> None:
    tables = metrics_tables(forecast, None)
    p_values = column(tables, "metrics", "dm_p")
    assert len(p_values) == 3 and all(re.fullmatch(r"[0-9.e-]+", p) for p in p_values)
    assert column(tables, "metrics", "dm_better")[-1] in {"model", "baseline", "neither"}


def test_without_a_forecast_the_tables_say_what_is_missing() -> None:
    assert "No predictions: predictor unavailable" in metrics_tables(None, "predictor unavailable")


def test_the_summary_states_the_overall_ratio_and_significance(forecast: Forecast) -> None:
    text = summary(forecast)
    m, p = forecast.overall.model, forecast.overall.persistence
    assert f"ratio {m.mae / p.mae:.3f}" in text and "Diebold-Mariano p = " in text


# --- the route, with MLflow unreachable -----------------------------------------------------------
async def test_without_mlflow_the_page_shows_the_market_and_says_what_is_missing(
    tmp_path: Path, market_bars: pd.DataFrame
) -> None:
    store = tmp_path / "market.parquet"
    LocalParquetStore(store).write(market_bars)
    async with offline_facade(offline_settings(tmp_path, market_data_uri=str(store))) as client:
        response = await client.get("/dashboard")
    assert response.status_code == 200
    assert "No predictions:" in response.text
    raw = re.search(r'<script id="chart-data" type="application/json">(.*?)</script>', response.text, re.S)
    assert raw
    data = json.loads(raw.group(1))
    assert len(data["close"]) == 91 * 24  # the /btc-info period, 2025-04-01 .. 2025-06-30
    assert set(data["prediction"]) == {None} and data["boundaries"] == []
