from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from btcforecast.metrics import (
    diebold_mariano,
    forecast_metrics,
    interval_metrics,
    newey_west_lags,
    persistence_metrics,
    pinball_loss,
)

QUANTILES = [0.1, 0.5, 0.9]


# --- point forecasts -------------------------------------------------------------------------------


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
    assert m.flat_share == 0.0
    assert m.n == 4


def test_directional_accuracy_counts_only_hours_where_the_price_moved() -> None:
    previous = np.array([100.0, 100.0, 100.0])
    actual = np.array([101.0, 100.0, 100.0])  # only the first hour moved
    predicted = np.array([102.0, 99.0, 98.0])  # wrong direction on the two flat hours: ignored
    assert forecast_metrics(actual, predicted, previous).directional_accuracy == 1.0


def test_a_flat_forecast_counts_as_wrong_on_an_hour_that_moved() -> None:
    previous = np.array([100.0, 100.0])
    actual = np.array([101.0, 99.0])
    predicted = np.array([100.0, 98.0])  # flat, then down: 1 of 2
    m = forecast_metrics(actual, predicted, previous)
    assert m.directional_accuracy == 0.5
    assert m.flat_share == 0.5


def test_directional_accuracy_is_nan_when_the_price_never_moved() -> None:
    previous = np.array([100.0, 100.0])
    m = forecast_metrics(previous.copy(), np.array([101.0, 99.0]), previous)
    assert math.isnan(m.directional_accuracy)


def test_persistence_predicts_the_last_close() -> None:
    previous = np.array([100.0, 110.0])
    actual = np.array([110.0, 99.0])
    m = persistence_metrics(actual, previous)
    assert m.mae == pytest.approx((10 + 11) / 2)
    assert m.directional_accuracy == 0.0
    assert m.flat_share == 1.0


def test_metrics_refuse_mismatched_arrays() -> None:
    with pytest.raises(ValueError):
        forecast_metrics(np.ones(3), np.ones(2), np.ones(3))


def test_metrics_refuse_empty_arrays() -> None:
    with pytest.raises(ValueError):
        forecast_metrics(np.array([]), np.array([]), np.array([]))


# --- Diebold-Mariano -------------------------------------------------------------------------------

# d = |model| - |baseline| = 1, -1, 2, 0, 3 (mean 1, centred 0, -2, 1, -1, 2).
MODEL_ERRORS = np.array([2.0, -1.0, 3.0, 1.0, 4.0])
BASELINE_ERRORS = np.array([1.0, 2.0, -1.0, 1.0, 1.0])


def test_newey_west_lag_rule() -> None:
    assert newey_west_lags(5) == 2  # floor(4 * 0.05 ** (2/9)) = floor(2.06)
    assert newey_west_lags(100) == 4
    assert newey_west_lags(3048) == 8  # the stitched champion backtest
    assert newey_west_lags(5, horizon=4) == 3  # at least h - 1
    assert newey_west_lags(3, horizon=10) == 2  # never more than n - 1


def test_diebold_mariano_matches_a_hand_computed_case() -> None:
    dm = diebold_mariano(MODEL_ERRORS, BASELINE_ERRORS)
    # gamma0 = 10/5 = 2, gamma1 = -5/5 = -1, gamma2 = 4/5 = 0.8; 2 lags, Bartlett weights 2/3 and 1/3:
    # long-run variance = 2 + 2 * (2/3) * (-1) + 2 * (1/3) * 0.8 = 1.2
    # DM = 1 / sqrt(1.2 / 5); HLN factor for h = 1: sqrt((5 + 1 - 2) / 5 / 5) * sqrt(5) = sqrt(4/5)
    expected = 1 / math.sqrt(1.2 / 5) * math.sqrt(4 / 5)
    assert expected == pytest.approx(math.sqrt(10 / 3))
    assert dm.statistic == pytest.approx(expected)
    assert dm.p_value == pytest.approx(2 * stats.t.sf(expected, df=4))
    assert dm.lags == 2
    assert dm.n == 5
    assert dm.horizon == 1
    assert dm.loss == "absolute"
    assert dm.better == "neither"


def test_diebold_mariano_p_value_comes_from_student_t_with_n_minus_1_degrees_of_freedom() -> None:
    dm = diebold_mariano(MODEL_ERRORS, BASELINE_ERRORS)  # statistic sqrt(10/3) = 1.8257, n = 5
    assert 2 * stats.norm.sf(dm.statistic) < dm.p_value  # heavier tails than the normal
    assert dm.p_value == pytest.approx(0.1419, abs=5e-4)  # t table, 4 df, t = 1.8257


def test_swapping_model_and_baseline_flips_the_sign_and_keeps_the_p_value() -> None:
    ab = diebold_mariano(MODEL_ERRORS, BASELINE_ERRORS)
    ba = diebold_mariano(BASELINE_ERRORS, MODEL_ERRORS)
    assert ba.statistic == pytest.approx(-ab.statistic)
    assert ba.p_value == pytest.approx(ab.p_value)


def test_identical_errors_give_statistic_zero_and_p_value_one() -> None:
    errors = np.array([1.0, -2.0, 3.0, 0.5])
    dm = diebold_mariano(errors, errors.copy())
    assert (dm.statistic, dm.p_value, dm.better) == (0.0, 1.0, "neither")


def test_errors_of_equal_size_and_opposite_sign_are_identical_losses() -> None:
    errors = np.array([1.0, -2.0, 3.0, 0.5])
    assert diebold_mariano(errors, -errors).p_value == 1.0


def test_a_clearly_better_model_has_a_small_p_value() -> None:
    rng = np.random.default_rng(7)
    baseline = rng.normal(0.0, 1.0, 500)
    model = 0.7 * baseline + rng.normal(0.0, 0.1, 500)
    dm = diebold_mariano(model, baseline)
    assert dm.statistic < 0
    assert dm.p_value < 1e-6
    assert dm.better == "model"
    assert diebold_mariano(baseline, model).better == "baseline"


def test_squared_loss_compares_squared_errors() -> None:
    # Absolute losses tie on every pair of hours (1 + 1 against 0 + 2), squared ones do not (0 + 4).
    model = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    baseline = np.array([0.0, 2.0, 0.0, 2.0, 0.0, 2.0])
    assert diebold_mariano(model, baseline, loss="absolute").p_value == 1.0
    squared = diebold_mariano(model, baseline, loss="squared")
    assert squared.loss == "squared"
    assert squared.statistic < 0  # 1 each hour against 0 or 4: mean 1 < 2


def test_a_constant_nonzero_loss_differential_is_infinitely_significant() -> None:
    dm = diebold_mariano(np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 4.0]))
    assert dm.statistic == -math.inf
    assert dm.p_value == 0.0
    assert dm.better == "model"


def test_diebold_mariano_needs_at_least_three_errors() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        diebold_mariano(np.array([1.0, 2.0]), np.array([2.0, 1.0]))


def test_diebold_mariano_refuses_non_finite_or_mismatched_errors() -> None:
    with pytest.raises(ValueError, match="finite"):
        diebold_mariano(np.array([1.0, np.nan, 2.0]), np.ones(3))
    with pytest.raises(ValueError, match="equal"):
        diebold_mariano(np.ones(4), np.ones(3))


def test_diebold_mariano_refuses_a_horizon_too_long_for_the_sample() -> None:
    with pytest.raises(ValueError, match="too long"):
        diebold_mariano(np.array([1.0, 2.0, 3.0]), np.array([3.0, 1.0, 2.0]), horizon=3)
    with pytest.raises(ValueError, match="horizon"):
        diebold_mariano(np.array([1.0, 2.0, 3.0]), np.array([3.0, 1.0, 2.0]), horizon=0)


def test_a_longer_horizon_uses_at_least_h_minus_1_lags_and_a_smaller_correction() -> None:
    rng = np.random.default_rng(3)
    model, baseline = rng.normal(0, 1, 20), rng.normal(0, 1.5, 20)
    assert diebold_mariano(model, baseline, horizon=6).lags == 5


# --- pinball loss ----------------------------------------------------------------------------------


def test_pinball_loss_matches_a_hand_computed_case() -> None:
    actual = np.array([10.0, 10.0])
    predictions = np.array([[8.0, 10.0, 13.0], [11.0, 12.0, 9.0]])
    # hour 1: u = 2, 0, -3 -> 0.1*2, 0, 0.1*3 = 0.2, 0, 0.3
    # hour 2: u = -1, -2, 1 -> 0.9*1, 0.5*2, 0.9*1 = 0.9, 1.0, 0.9
    assert pinball_loss(actual, predictions, QUANTILES) == pytest.approx(
        (0.2 + 0.0 + 0.3 + 0.9 + 1.0 + 0.9) / 6
    )


def test_pinball_loss_of_the_median_alone_is_half_the_mae() -> None:
    actual = np.array([10.0, 20.0, 30.0])
    median = np.array([12.0, 17.0, 30.0])
    assert pinball_loss(actual, median[:, None], [0.5]) == pytest.approx(np.abs(actual - median).mean() / 2)
    assert pinball_loss(actual, median, [0.5]) == pytest.approx(5 / 6)  # a 1-D array for one quantile


def test_pinball_loss_refuses_a_shape_that_does_not_match_the_quantiles() -> None:
    with pytest.raises(ValueError, match=r"\[N, Q\]"):
        pinball_loss(np.ones(2), np.ones((2, 2)), QUANTILES)


# --- intervals -------------------------------------------------------------------------------------


def test_interval_metrics_match_a_hand_computed_case() -> None:
    actual = np.array([100.0, 110.0, 95.0, 90.0, 130.0, 100.0])
    lower = np.array([90.0, 100.0, 96.0, 90.0, 100.0, 99.0])
    upper = np.array([110.0, 110.0, 104.0, 95.0, 120.0, 101.0])
    median = (lower + upper) / 2
    predictions = np.column_stack([lower, median, upper])
    terciles = np.array([0, 0, 1, 1, 2, 2])
    m = interval_metrics(actual, predictions, QUANTILES, terciles)
    # inside: yes, yes (upper bound), no (below), yes (lower bound), no (above), yes
    assert m.level == 0.8
    assert m.coverage == pytest.approx(4 / 6)
    assert m.coverage_by_volatility == {"calm": 1.0, "normal": 0.5, "volatile": 0.5}
    assert m.mean_width == pytest.approx((20 + 10 + 8 + 5 + 20 + 2) / 6)
    assert m.pinball == pytest.approx(pinball_loss(actual, predictions, QUANTILES))
    assert m.n == 6


def test_the_interval_runs_from_the_lowest_to_the_highest_quantile_whatever_the_column_order() -> None:
    actual = np.array([100.0, 100.0])
    predictions = np.array([[105.0, 95.0, 100.0], [99.0, 90.0, 95.0]])  # columns 0.9, 0.05, 0.5
    m = interval_metrics(actual, predictions, [0.9, 0.05, 0.5], np.array([0, 1]))
    assert m.level == pytest.approx(0.85)
    assert m.coverage == 0.5
    assert m.mean_width == pytest.approx((10 + 9) / 2)


def test_a_volatility_tercile_without_hours_has_nan_coverage() -> None:
    actual = np.array([100.0, 100.0])
    predictions = np.array([[90.0, 100.0, 110.0], [101.0, 102.0, 103.0]])
    m = interval_metrics(actual, predictions, QUANTILES, np.array([0, 2]))
    assert m.coverage_by_volatility["calm"] == 1.0
    assert math.isnan(m.coverage_by_volatility["normal"])
    assert m.coverage_by_volatility["volatile"] == 0.0


def test_interval_metrics_need_two_quantiles() -> None:
    with pytest.raises(ValueError, match="two quantiles"):
        interval_metrics(np.ones(2), np.ones((2, 1)), [0.5], np.array([0, 1]))


def test_interval_metrics_refuse_tercile_codes_other_than_0_1_2() -> None:
    with pytest.raises(ValueError, match="volatility_tercile"):
        interval_metrics(np.ones(2), np.ones((2, 3)), QUANTILES, np.array([0, 3]))
