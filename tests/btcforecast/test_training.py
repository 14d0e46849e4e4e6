from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import torch

from btcforecast.backtests import train_models
from btcforecast.market import is_synthetic
from btcforecast.training import TrainedModel, TrainingParams, choose_point_shrink, train_for_base_date

QUICK = TrainingParams(train_days=30, epochs=3, patience=3)


def _same_weights(a: TrainedModel, b: TrainedModel) -> bool:
    pairs = zip(a.model.state_dict().items(), b.model.state_dict().items(), strict=True)
    return all(name_a == name_b and torch.equal(x, y) for (name_a, x), (name_b, y) in pairs)


def test_identical_data_and_seed_give_identical_weights(market_bars: pd.DataFrame) -> None:
    first = train_for_base_date(market_bars, date(2025, 5, 1), QUICK)
    second = train_for_base_date(market_bars, date(2025, 5, 1), QUICK)
    assert _same_weights(first, second)
    assert first.config == second.config


def test_another_seed_gives_other_weights(market_bars: pd.DataFrame) -> None:
    first = train_for_base_date(market_bars, date(2025, 5, 1), QUICK)
    other = train_for_base_date(
        market_bars, date(2025, 5, 1), TrainingParams(train_days=30, epochs=3, seed=7)
    )
    assert not torch.equal(first.model.head.weight, other.model.head.weight)


def test_training_uses_the_configured_days_before_the_base_date(market_bars: pd.DataFrame) -> None:
    trained = train_for_base_date(market_bars, date(2025, 5, 1), TrainingParams(train_days=45, epochs=1))
    training = trained.config.training
    assert training["train_days"] == 45
    assert training["train_start"] == "2025-03-17T00:00:00+00:00"
    assert training["train_end"] == "2025-05-01T00:00:00+00:00"
    assert training["samples"] == 45 * 24


def test_the_default_window_is_a_year(market_bars: pd.DataFrame) -> None:
    assert TrainingParams().train_days == 365


def test_bars_after_the_base_date_do_not_change_the_model(market_bars: pd.DataFrame) -> None:
    cut = market_bars.loc[:"2025-04-30 23:00"].copy()
    cut.attrs = dict(market_bars.attrs)
    full = train_for_base_date(market_bars, date(2025, 5, 1), QUICK)
    truncated = train_for_base_date(cut, date(2025, 5, 1), QUICK)
    assert _same_weights(full, truncated)


def test_validation_metrics_sit_beside_the_persistence_baseline(market_bars: pd.DataFrame) -> None:
    metrics = train_for_base_date(market_bars, date(2025, 5, 1), QUICK).config.metrics
    assert metrics["validation"]["n"] == metrics["persistence"]["n"] == 144
    assert 0.0 <= metrics["significance"]["p_value"] <= 1.0


def test_validation_metrics_include_the_interval_beside_the_naive_band(market_bars: pd.DataFrame) -> None:
    metrics = train_for_base_date(market_bars, date(2025, 5, 1), QUICK).config.metrics
    for group in ("interval", "naive_band"):
        assert metrics[group]["level"] == pytest.approx(0.8)
        assert {"coverage", "coverage_calm", "coverage_normal", "coverage_volatile", "mean_width"} <= set(
            metrics[group]
        )
    assert metrics["point"]["pinball_ratio"] == pytest.approx(
        metrics["interval"]["pinball"] / metrics["naive_band"]["pinball"]
    )


def test_the_chosen_shrink_is_stored_in_the_config_and_applied_by_the_model(
    market_bars: pd.DataFrame,
) -> None:
    trained = train_for_base_date(market_bars, date(2025, 5, 1), QUICK)
    assert (
        trained.config.point_shrink == trained.model.point_shrink == trained.config.metrics["point"]["shrink"]
    )
    assert 0.0 <= trained.config.point_shrink <= 1.0


def test_a_median_worse_than_persistence_on_validation_is_shrunk_to_persistence() -> None:
    previous = np.full(6, 100.0)
    actual = np.array([101.0, 99.0, 101.0, 99.0, 101.0, 99.0])
    wrong_way = -np.log(actual / previous)  # always predicts the opposite move
    assert choose_point_shrink(actual, previous, wrong_way) == 0.0


def test_a_median_better_than_persistence_on_validation_keeps_its_moves() -> None:
    previous = np.full(6, 100.0)
    actual = np.array([101.0, 99.0, 101.0, 99.0, 101.0, 99.0])
    assert choose_point_shrink(actual, previous, np.log(actual / previous)) == 1.0


def test_half_right_moves_are_partly_shrunk() -> None:
    previous = np.full(4, 100.0)
    actual = np.array([101.0, 101.0, 99.0, 99.0])
    half = np.log(np.array([102.0, 100.5, 98.0, 99.5]) / previous)
    assert 0.0 < choose_point_shrink(actual, previous, half) < 1.0


def test_a_process_pool_trains_exactly_what_one_process_trains(market_bars: pd.DataFrame) -> None:
    days = [date(2025, 5, 1), date(2025, 5, 8)]
    pooled = list(train_models(market_bars, days, QUICK, workers=2))
    sequential = list(train_models(market_bars, days, QUICK, workers=1))
    assert [t.base_date for t in pooled] == days
    for a, b in zip(pooled, sequential, strict=True):
        assert _same_weights(a, b)
        assert a.config == b.config


def test_the_data_source_travels_with_the_model(market_bars: pd.DataFrame) -> None:
    source = train_for_base_date(market_bars, date(2025, 5, 1), QUICK).config.data_source
    assert source["synthetic"] is is_synthetic(market_bars)
    assert source["source"] == market_bars.attrs["source"]


def test_a_base_date_without_enough_history_is_refused(market_bars: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="not enough bars"):
        train_for_base_date(market_bars, date(2024, 1, 15), QUICK)
    with pytest.raises(ValueError, match="not enough bars"):
        train_for_base_date(market_bars, date(2024, 12, 1), TrainingParams(train_days=365, epochs=1))
