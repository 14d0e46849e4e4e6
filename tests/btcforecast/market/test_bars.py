"""The canonical rules every import must pass."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from btcforecast.market import (
    COLUMNS,
    MarketDataError,
    generate_bars,
    is_synthetic,
    validate_bars,
    with_source,
)


@pytest.fixture
def bars() -> pd.DataFrame:
    return generate_bars("2024-03-01", "2024-03-02 23:00", seed=7)


def test_valid_bars_report_rows_and_range(bars: pd.DataFrame) -> None:
    report = validate_bars(bars)
    assert (report.rows, report.first, report.last) == (48, bars.index[0], bars.index[-1])
    assert report.gaps == ()


def test_gaps_are_reported_not_fatal(bars: pd.DataFrame) -> None:
    holed = bars.drop(bars.index[10:13])
    report = validate_bars(holed)
    assert [(g.after, g.before) for g in report.gaps] == [(bars.index[9], bars.index[13])]
    assert report.missing_hours == 3


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("open", np.nan, "not a finite number"),
        ("close", np.inf, "not a finite number"),
        ("low", -5.0, "negative price"),
        ("open", 0.0, "zero price"),
        ("volume", -1.0, "negative volume"),
    ],
)
def test_bad_value_names_timestamp_and_column(
    bars: pd.DataFrame, column: str, value: float, problem: str
) -> None:
    bad = bars.copy()
    bad.iloc[5, bad.columns.get_loc(column)] = value
    where = re.escape(f"timestamp {bars.index[5].isoformat()}, column '{column}'")
    with pytest.raises(MarketDataError, match=rf"{where}: .*{problem}"):
        validate_bars(bad)


def test_high_below_body_is_rejected(bars: pd.DataFrame) -> None:
    bad = bars.copy()
    bad.iloc[3, bad.columns.get_loc("high")] = min(bad["open"].iloc[3], bad["close"].iloc[3]) * 0.999
    with pytest.raises(MarketDataError, match="column 'high'"):
        validate_bars(bad)


def test_low_above_body_is_rejected(bars: pd.DataFrame) -> None:
    bad = bars.copy()
    bad.iloc[3, bad.columns.get_loc("low")] = max(bad["open"].iloc[3], bad["close"].iloc[3]) * 1.001
    with pytest.raises(MarketDataError, match="column 'low'"):
        validate_bars(bad)


def test_unsorted_timestamps_are_rejected(bars: pd.DataFrame) -> None:
    with pytest.raises(MarketDataError, match="earlier than the bar before"):
        validate_bars(bars.iloc[[0, 2, 1, 3]])


def test_duplicate_timestamps_are_rejected(bars: pd.DataFrame) -> None:
    with pytest.raises(MarketDataError, match="duplicate hour"):
        validate_bars(bars.iloc[[0, 1, 1, 2]])


def test_timestamps_off_the_hour_are_rejected(bars: pd.DataFrame) -> None:
    shifted = bars.copy()
    shifted.index = shifted.index + pd.Timedelta(minutes=30)
    with pytest.raises(MarketDataError, match="not on a whole hour"):
        validate_bars(shifted)


def test_source_rows_are_named_when_known(bars: pd.DataFrame) -> None:
    bad = bars.copy()
    bad.iloc[2, bad.columns.get_loc("close")] = -1.0
    with pytest.raises(MarketDataError, match=r"^row 102, column 'close'") as info:
        validate_bars(bad, source_rows=np.arange(100, 148))
    assert (info.value.row, info.value.column) == (102, "close")


def test_non_utc_index_is_rejected(bars: pd.DataFrame) -> None:
    local = bars.tz_convert("Europe/Berlin")
    with pytest.raises(MarketDataError, match="UTC"):
        validate_bars(local)


def test_missing_column_is_rejected(bars: pd.DataFrame) -> None:
    with pytest.raises(MarketDataError, match="volume"):
        validate_bars(bars.drop(columns=["volume"]))


def test_provenance_label_marks_synthetic_data(bars: pd.DataFrame) -> None:
    assert is_synthetic(bars)
    assert not is_synthetic(with_source(bars.copy(), "csv:x.csv"))
    assert list(bars.columns) == list(COLUMNS)
