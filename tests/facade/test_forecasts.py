"""Stitching parts of a forecast: the overall report sees every quantile only when all parts have it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from btcforecast.evaluation import backtest_report
from facade.forecasts import Part, stitched_quantiles

HOURS = pd.date_range("2025-01-03", periods=6, freq="h", tz="UTC")
CLOSES = pd.Series(
    np.linspace(100.0, 130.0, 60), index=pd.date_range("2025-01-01", periods=60, freq="h", tz="UTC")
)


def part(hours: pd.DatetimeIndex, quantiles: np.ndarray, levels: tuple[float, ...]) -> Part:
    point = quantiles[:, levels.index(0.5)]
    interval = len(levels) > 1
    return Part(
        alias="backtest_20250101",
        version="1",
        hours=hours,
        predictions=point,
        lower=quantiles[:, 0] if interval else None,
        upper=quantiles[:, -1] if interval else None,
        quantiles=quantiles,
        metrics=backtest_report(CLOSES, hours, quantiles, levels),
        quantile_levels=levels,
    )


def band(n: int, offset: float) -> np.ndarray:
    median = np.full(n, 110.0) + offset
    return np.column_stack([median - 5.0, median, median + 5.0])


def test_parts_with_the_same_quantiles_stitch_every_column() -> None:
    first = part(HOURS[:3], band(3, 0.0), (0.1, 0.5, 0.9))
    second = part(HOURS[3:], band(3, 1.0), (0.1, 0.5, 0.9))
    stitched = stitched_quantiles([first, second])
    assert stitched.quantiles == (0.1, 0.5, 0.9)
    assert stitched.values.tolist() == np.concatenate([band(3, 0.0), band(3, 1.0)]).tolist()


def test_parts_with_different_quantiles_stitch_their_medians_alone() -> None:
    first = part(HOURS[:3], band(3, 0.0), (0.1, 0.5, 0.9))
    second = part(HOURS[3:], band(3, 1.0)[:, 1:2], (0.5,))
    stitched = stitched_quantiles([first, second])
    assert stitched.quantiles == (0.5,)
    assert stitched.values[:, 0].tolist() == [110.0] * 3 + [111.0] * 3
    assert stitched.lower is None
