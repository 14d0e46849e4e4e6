"""The champion's stitching plan as a plain function."""

from __future__ import annotations

import itertools
from datetime import date

import pandas as pd

from facade.champion_plan import stitch_plan
from facade.time_range import HOUR

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
