from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btcforecast.features import (
    CLOSE_INDEX,
    FEATURES,
    WARMUP,
    WINDOW,
    InsufficientHistoryError,
    compute_features,
    feature_matrix,
    history_start,
    windows_for_range,
)
from btcforecast.market import generate_bars

START = pd.Timestamp("2025-03-27 00:00", tz="UTC")


@pytest.fixture(scope="module")
def features(market_bars: pd.DataFrame) -> pd.DataFrame:
    return compute_features(market_bars.loc[history_start(START) :])


def test_features_are_named_in_the_model_order(features: pd.DataFrame) -> None:
    assert tuple(features.columns) == FEATURES


def test_only_the_warmup_rows_are_undefined(features: pd.DataFrame) -> None:
    assert features.iloc[:WARMUP].isna().all().all()
    assert not features.iloc[WARMUP:].isna().any().any()


def test_window_for_an_hour_holds_the_bars_before_it(
    features: pd.DataFrame, market_bars: pd.DataFrame
) -> None:
    windows, hours = windows_for_range(features, START, START + pd.Timedelta(hours=2))
    assert list(hours) == [START, START + pd.Timedelta(hours=1), START + pd.Timedelta(hours=2)]
    expected_closes = market_bars["close"].loc[
        START - pd.Timedelta(hours=WINDOW) : START - pd.Timedelta(hours=1)
    ]
    np.testing.assert_allclose(windows[0, :, CLOSE_INDEX], expected_closes.to_numpy(), rtol=1e-6)


def test_windows_never_contain_the_hour_they_predict(
    features: pd.DataFrame, market_bars: pd.DataFrame
) -> None:
    windows, hours = windows_for_range(features, START, START + pd.Timedelta(hours=47))
    last_close_seen = windows[:, -1, CLOSE_INDEX]
    previous_close = market_bars["close"].shift(1).loc[hours].to_numpy()
    np.testing.assert_allclose(last_close_seen, previous_close, rtol=1e-6)


def test_every_hour_to_the_end_of_data_gets_a_window(features: pd.DataFrame) -> None:
    windows, hours = windows_for_range(features, START)
    assert hours[0] == START and hours[-1] == features.index[-1]
    assert windows.shape == (len(hours), WINDOW, len(FEATURES)) and windows.dtype == np.float32


def test_a_start_without_enough_history_is_refused(features: pd.DataFrame) -> None:
    with pytest.raises(InsufficientHistoryError):
        windows_for_range(features, features.index[WARMUP])


def test_windows_cut_from_a_kept_matrix_equal_those_cut_from_the_frame() -> None:
    bars = generate_bars("2025-01-01", "2025-01-10 23:00")
    features = compute_features(bars)
    start, end = pd.Timestamp("2025-01-03 05:00", tz="UTC"), pd.Timestamp("2025-01-04 07:00", tz="UTC")
    alone, hours = windows_for_range(features, start, end)
    kept, same_hours = windows_for_range(features, start, end, matrix=feature_matrix(features))
    np.testing.assert_array_equal(kept, alone)
    assert same_hours.equals(hours) and hours[0] == start and hours[-1] == end
