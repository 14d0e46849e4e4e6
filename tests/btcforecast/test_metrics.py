from __future__ import annotations

import numpy as np
import pytest

from btcforecast.metrics import forecast_metrics, persistence_metrics


def test_metrics_match_a_hand_computed_case() -> None:
    previous = np.array([100.0, 110.0, 120.0, 100.0])
    actual = np.array([110.0, 120.0, 100.0, 100.0])
    predicted = np.array([105.0, 100.0, 110.0, 90.0])
    m = forecast_metrics(actual, predicted, previous)
    # errors: -5, -20, +10, -10
    assert m.mae == pytest.approx(45 / 4)
    assert m.rmse == pytest.approx(np.sqrt((25 + 400 + 100 + 100) / 4))
    assert m.mape == pytest.approx((5 / 110 + 20 / 120 + 10 / 100 + 10 / 100) / 4 * 100)
    # moves: up, up, down, flat (excluded); predicted: up, down, down -> 2 of 3 right
    assert m.directional_accuracy == pytest.approx(2 / 3)
    assert m.n == 4


def test_persistence_predicts_the_last_close() -> None:
    previous = np.array([100.0, 110.0])
    actual = np.array([110.0, 99.0])
    m = persistence_metrics(actual, previous)
    assert m.mae == pytest.approx((10 + 11) / 2)
    assert m.directional_accuracy == 0.0


def test_metrics_refuse_mismatched_arrays() -> None:
    with pytest.raises(ValueError):
        forecast_metrics(np.ones(3), np.ones(2), np.ones(3))
