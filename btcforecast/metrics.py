"""Forecast quality: the metrics reported for a model and for the persistence baseline."""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel


class ForecastMetrics(BaseModel):
    mae: float
    rmse: float
    mape: float
    """Mean absolute percentage error, in percent."""
    directional_accuracy: float
    """Share of hours where the predicted move from the last close has the actual move's sign."""
    n: int


def forecast_metrics(actual: np.ndarray, predicted: np.ndarray, previous: np.ndarray) -> ForecastMetrics:
    """Metrics of ``predicted`` against ``actual``; ``previous`` is the last close each forecast saw."""
    actual = np.asarray(actual, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    previous = np.asarray(previous, dtype=np.float64)
    if not (actual.shape == predicted.shape == previous.shape) or actual.size == 0:
        raise ValueError("metrics need equal, non-empty arrays")
    error = predicted - actual
    moved = actual != previous
    same_sign = np.sign(predicted - previous) == np.sign(actual - previous)
    direction = float(same_sign[moved].mean()) if moved.any() else math.nan
    return ForecastMetrics(
        mae=float(np.abs(error).mean()),
        rmse=float(np.sqrt((error**2).mean())),
        mape=float((np.abs(error) / np.abs(actual)).mean() * 100.0),
        directional_accuracy=direction,
        n=int(actual.size),
    )


def persistence_metrics(actual: np.ndarray, previous: np.ndarray) -> ForecastMetrics:
    """The naive forecast (next close = last close); its directional accuracy is by definition 0."""
    return forecast_metrics(actual, previous, previous)
