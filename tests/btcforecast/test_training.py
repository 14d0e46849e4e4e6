from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import torch

from btcforecast.market import is_synthetic
from btcforecast.training import TrainingParams, train_for_base_date

QUICK = TrainingParams(epochs=3, patience=3)


def test_identical_data_and_seed_give_identical_weights(market_bars: pd.DataFrame) -> None:
    first = train_for_base_date(market_bars, date(2025, 5, 1), QUICK)
    second = train_for_base_date(market_bars, date(2025, 5, 1), QUICK)
    for (name, a), (_, b) in zip(
        first.model.state_dict().items(), second.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_another_seed_gives_other_weights(market_bars: pd.DataFrame) -> None:
    first = train_for_base_date(market_bars, date(2025, 5, 1), QUICK)
    other = train_for_base_date(market_bars, date(2025, 5, 1), TrainingParams(epochs=3, patience=3, seed=7))
    assert not torch.equal(first.model.head.weight, other.model.head.weight)


def test_training_uses_the_30_days_before_the_base_date(market_bars: pd.DataFrame) -> None:
    trained = train_for_base_date(market_bars, date(2025, 5, 1), QUICK)
    training = trained.config.training
    assert training["train_start"] == "2025-04-01T00:00:00+00:00"
    assert training["train_end"] == "2025-05-01T00:00:00+00:00"
    assert training["samples"] == 30 * 24


def test_bars_after_the_base_date_do_not_change_the_model(market_bars: pd.DataFrame) -> None:
    cut = market_bars.loc[:"2025-04-30 23:00"].copy()
    cut.attrs = dict(market_bars.attrs)
    full = train_for_base_date(market_bars, date(2025, 5, 1), QUICK)
    truncated = train_for_base_date(cut, date(2025, 5, 1), QUICK)
    assert torch.equal(full.model.head.weight, truncated.model.head.weight)


def test_validation_metrics_sit_beside_the_persistence_baseline(market_bars: pd.DataFrame) -> None:
    metrics = train_for_base_date(market_bars, date(2025, 5, 1), QUICK).config.metrics
    assert metrics["validation"]["n"] == metrics["persistence"]["n"] == 144


def test_the_data_source_travels_with_the_model(market_bars: pd.DataFrame) -> None:
    source = train_for_base_date(market_bars, date(2025, 5, 1), QUICK).config.data_source
    assert source["synthetic"] is is_synthetic(market_bars)
    assert source["source"] == market_bars.attrs["source"]


def test_a_base_date_without_30_days_of_history_is_refused(market_bars: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="not enough bars"):
        train_for_base_date(market_bars, date(2024, 1, 15), QUICK)
