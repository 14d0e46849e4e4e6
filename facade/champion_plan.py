"""The champion's stitching plan: which backtest alias predicts which hours of the stitched backtest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from btcforecast.alias_names import backtest_date, is_backtest
from facade.time_range import HOUR


@dataclass(frozen=True)
class Segment:
    """One alias's share of the stitched champion backtest: every hour in [start, end]."""

    alias: str
    version: str
    start: pd.Timestamp
    end: pd.Timestamp


def stitch_plan(aliases: dict[str, str], champion_start: date, data_end: pd.Timestamp) -> list[Segment]:
    """Backtest aliases on or after ``champion_start``, each from its date to the hour before the next.

    The last runs to ``data_end``. Segments touch without gap or overlap, so each hour is predicted
    once. Named aliases are not part of the stitching; aliases dated after the data are left out.
    """
    dated = sorted(
        (day, alias)
        for alias in aliases
        if is_backtest(alias) and (day := backtest_date(alias)) is not None and day >= champion_start
    )
    starts = [(pd.Timestamp(day, tz="UTC"), alias) for day, alias in dated]
    starts = [(ts, alias) for ts, alias in starts if ts <= data_end]
    segments = []
    for i, (start, alias) in enumerate(starts):
        end = starts[i + 1][0] - HOUR if i + 1 < len(starts) else data_end
        segments.append(Segment(alias=alias, version=aliases[alias], start=start, end=end))
    return segments
