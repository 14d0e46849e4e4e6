"""How forecasts become response bodies: hours formatted like strftime, a body encoded once per forecast."""

from __future__ import annotations

import dataclasses

import numpy as np
import orjson
import pandas as pd
import pytest

from btcforecast.evaluation import backtest_report
from facade.api.format import ISO_HOUR, forecast_body, forecast_payload, iso_hours
from facade.forecasts import Forecast, Part


@pytest.mark.parametrize(
    "index",
    [
        pd.date_range("2024-12-30 20:00", "2025-01-02 05:00", freq="h", tz="UTC"),
        pd.date_range("2025-03-29 22:00", periods=30, freq="h", tz="Europe/Paris"),  # across a DST change
        pd.date_range("2025-03-27", periods=50, freq="h"),
        pd.date_range("2025-03-27", periods=50, freq="h", tz="UTC", unit="s"),
        pd.DatetimeIndex(["2025-01-02 03:00", "2024-02-29 23:00", "2025-01-02 03:00"], tz="UTC"),
        pd.date_range("1969-12-31 20:00", periods=8, freq="h", tz="UTC"),
    ],
)
def test_iso_hours_write_what_strftime_writes(index: pd.DatetimeIndex) -> None:
    assert iso_hours(index) == list(index.strftime(ISO_HOUR))


@pytest.mark.parametrize(
    "index",
    [
        pd.date_range("2025-03-27 00:30", periods=5, freq="h", tz="UTC"),
        pd.DatetimeIndex(["2025-03-27 00:00:00.5", "2025-03-27 00:59:59.999"], tz="UTC"),
    ],
)
def test_iso_hours_off_the_hour_still_write_what_strftime_writes(index: pd.DatetimeIndex) -> None:
    assert iso_hours(index) == list(index.strftime(ISO_HOUR))


def test_iso_hours_of_nothing_is_empty() -> None:
    assert iso_hours(pd.DatetimeIndex([], tz="UTC")) == []


def _forecast() -> Forecast:
    closes = pd.Series(
        np.linspace(100.0, 130.0, 60), index=pd.date_range("2025-01-01", periods=60, freq="h", tz="UTC")
    )
    hours = closes.index[40:46]
    levels = (0.1, 0.5, 0.9)
    quantiles = np.column_stack([np.full(6, 110.0) - 5, np.full(6, 110.0), np.full(6, 110.0) + 5])
    report = backtest_report(closes, hours, quantiles, levels)
    part = Part("backtest_20250101", "1", hours, quantiles[:, 1], quantiles[:, 0], quantiles[:, 2], quantiles,
                report, levels)  # fmt: skip
    return Forecast(hours[0], hours[-1], [part], report, "synthetic", True)


def test_a_forecast_body_is_its_payload_encoded_once() -> None:
    forecast = _forecast()
    body = forecast_body(forecast, stitched=False)
    assert orjson.loads(body) == orjson.loads(
        orjson.dumps(forecast_payload(forecast, stitched=False), option=orjson.OPT_SERIALIZE_NUMPY)
    )
    assert forecast_body(forecast, stitched=False) is body


def test_the_stitched_and_the_single_body_of_one_forecast_are_kept_apart() -> None:
    forecast = _forecast()
    single = orjson.loads(forecast_body(forecast, stitched=False))
    stitched = orjson.loads(forecast_body(forecast, stitched=True))
    assert single["model_alias"] == "backtest_20250101"
    assert stitched["model_alias"] is None


def test_a_body_written_by_columns_is_byte_for_byte_the_row_dicts_encoded() -> None:
    one = _forecast()
    odd = dataclasses.replace(
        one.parts[0],
        alias='we"ird é',
        version="12",
        predictions=np.array([np.nan, 1e17, 0.1 + 0.2, -0.0, 110.005, np.inf]),
        lower=None,
        upper=None,
    )
    stitched = Forecast(one.start, one.end, [one.parts[0], odd], one.overall, "synthetic", True)
    for forecast in (one, stitched):
        for flag in (False, True):
            expected = orjson.dumps(
                forecast_payload(forecast, stitched=flag), option=orjson.OPT_SERIALIZE_NUMPY
            )
            assert forecast_body(forecast, stitched=flag) == expected
