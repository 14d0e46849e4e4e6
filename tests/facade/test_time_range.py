"""Times and ranges as plain functions: parsing to UTC hours, checks against the market data."""

from __future__ import annotations

import pandas as pd
import pytest

from btcforecast.errors import InputError
from facade.time_range import OutOfData, check_range, parse_time


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-03-27", "2025-03-27 00:00"),
        ("20250327", "2025-03-27 00:00"),
        ("2025-03-27T05:00:00", "2025-03-27 05:00"),
        ("2025-03-27T07:00:00+02:00", "2025-03-27 05:00"),
    ],
)
def test_dates_parse_to_utc_hours(raw: str, expected: str) -> None:
    assert parse_time("start", raw) == pd.Timestamp(expected, tz="UTC")


def test_a_bare_end_date_means_its_last_hour() -> None:
    assert parse_time("end", "2025-03-27", end_of_day=True) == pd.Timestamp("2025-03-27 23:00", tz="UTC")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("2025-02-30", "impossible date"),
        ("2025-13-01", "impossible date"),
        ("", "empty"),
        ("yesterday", "not a date"),
        ("2025-03-27T05:30", "not on the hour"),
        ("9" * 60, "longer than"),
    ],
)
def test_bad_dates_are_refused_naming_the_problem(raw: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        parse_time("start", raw)


def test_ranges_outside_the_data_or_reversed_are_refused() -> None:
    index = pd.date_range("2025-01-01", periods=24 * 10, freq="h", tz="UTC")
    with pytest.raises(OutOfData, match="outside the data"):
        check_range(index, pd.Timestamp("2024-06-01", tz="UTC"), None)
    with pytest.raises(OutOfData, match="outside the data"):
        check_range(index, pd.Timestamp("2025-01-05", tz="UTC"), pd.Timestamp("2026-01-01", tz="UTC"))
    with pytest.raises(InputError, match="after end"):
        check_range(index, pd.Timestamp("2025-01-06", tz="UTC"), pd.Timestamp("2025-01-05", tz="UTC"))
    assert check_range(index, pd.Timestamp("2025-01-05", tz="UTC"), None) == index[-1]
