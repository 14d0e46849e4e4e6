"""The synthetic generator: reproducible, valid, realistic enough to train on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from btcforecast.market import DEFAULT_END, DEFAULT_START, generate_bars, is_synthetic, validate_bars


def test_same_seed_gives_identical_bars() -> None:
    pd.testing.assert_frame_equal(generate_bars(seed=3), generate_bars(seed=3))


def test_different_seeds_give_different_bars() -> None:
    assert not generate_bars(seed=1)["close"].equals(generate_bars(seed=2)["close"])


def test_default_period_is_the_seed_api_period_and_valid() -> None:
    bars = generate_bars()
    report = validate_bars(bars)
    assert (report.rows, report.first, report.last) == (13_872, DEFAULT_START, DEFAULT_END)
    assert report.gaps == ()


def test_prices_stay_at_a_btc_like_level() -> None:
    close = generate_bars()["close"]
    assert close.min() > 30_000
    assert close.max() < 130_000


def test_volatility_clusters() -> None:
    returns = np.log(generate_bars()["close"]).diff().dropna()
    assert (returns**2).autocorr(lag=1) > 0.05


def test_bars_are_labelled_synthetic() -> None:
    bars = generate_bars("2024-05-01", "2024-05-02")
    assert is_synthetic(bars)
    assert bars.index.name == "timestamp" and str(bars.index.tz) == "UTC"
