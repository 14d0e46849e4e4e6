"""The picture logged on each version's run: actual close against the predicted band and median.

A reviewer opening a run in the MLflow UI sees at a glance whether the 80% band follows the price
and how wide it is, next to the figures. matplotlib is imported here only, when a figure is drawn,
and drawn through the Agg canvas directly (no pyplot, no process-wide backend switch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

POINT_QUANTILE = 0.5


def backtest_figure(
    hours: pd.DatetimeIndex,
    actual: np.ndarray,
    quantile_predictions: np.ndarray,
    quantiles: Sequence[float],
    title: str,
) -> Figure:
    """Actual close (black), median forecast (blue) and the lowest..highest quantile band (shaded)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    q = list(quantiles)
    predictions = np.asarray(quantile_predictions, dtype=np.float64).reshape(len(hours), len(q))
    x = pd.DatetimeIndex(hours).tz_convert("UTC").tz_localize(None).to_pydatetime()
    figure = Figure(figsize=(11, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if len(q) >= 2:
        axes.fill_between(
            x,
            predictions[:, 0],
            predictions[:, -1],
            step="mid",
            color="tab:blue",
            alpha=0.22,
            linewidth=0,
            label=f"predicted {round(q[0] * 100)}-{round(q[-1] * 100)}% band",
        )
    axes.plot(x, predictions[:, q.index(POINT_QUANTILE)], color="tab:blue", linewidth=1.0, label="median")
    axes.plot(x, np.asarray(actual, dtype=np.float64), color="black", linewidth=1.0, label="actual close")
    axes.set_title(title, fontsize=10)
    axes.set_ylabel("BTC close (USD)")
    axes.set_xlabel("hour (UTC)")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize=8)
    figure.autofmt_xdate()
    return figure
