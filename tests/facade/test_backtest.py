"""The backtest logic as plain functions: stitching, ranges and dates (metrics: btcforecast.evaluation)."""

from __future__ import annotations

import itertools
from datetime import date

import pandas as pd
import pytest

from facade.backtest import HOUR, check_range, parse_time, stitch_plan
from facade.errors import InputError, OutOfData

ALIASES = {
    "production": "9",
    "backtest_20250320": "1",
    "backtest_20250327": "2",
    "backtest_20250403": "3",
    "backtest_20250410": "4",
}
DATA_END = pd.Timestamp("2025-04-20 23:00", tz="UTC")


def test_stitching_starts_at_the_champion_start_and_ignores_named_and_earlier_aliases() -> None:
    plan = stitch_plan(ALIASES, date(2025, 3, 27), DATA_END)
    assert [s.alias for s in plan] == ["backtest_20250327", "backtest_20250403", "backtest_20250410"]
    assert [s.version for s in plan] == ["2", "3", "4"]


def test_stitched_segments_have_no_gap_and_no_overlap_and_cover_each_hour_once() -> None:
    plan = stitch_plan(ALIASES, date(2025, 3, 27), DATA_END)
    for before, after in itertools.pairwise(plan):
        assert after.start - before.end == HOUR
    hours = [h for s in plan for h in pd.date_range(s.start, s.end, freq="h")]
    assert len(hours) == len(set(hours))
    assert hours == list(pd.date_range(plan[0].start, DATA_END, freq="h"))


def test_each_alias_predicts_from_its_date_to_the_hour_before_the_next_alias() -> None:
    first, second, last = stitch_plan(ALIASES, date(2025, 3, 27), DATA_END)
    assert first.start == pd.Timestamp("2025-03-27 00:00", tz="UTC")
    assert first.end == pd.Timestamp("2025-04-02 23:00", tz="UTC")
    assert second.start == pd.Timestamp("2025-04-03 00:00", tz="UTC")
    assert last.end == DATA_END


def test_aliases_dated_after_the_data_are_left_out_of_the_stitching() -> None:
    plan = stitch_plan({**ALIASES, "backtest_20250601": "5"}, date(2025, 3, 27), DATA_END)
    assert plan[-1].alias == "backtest_20250410"


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
