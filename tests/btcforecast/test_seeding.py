"""Seeding (make up, the chart's seed Job): data, missing backtests, serving aliases; idempotent."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from btcforecast import registry
from btcforecast.backtests import base_dates, parse_every
from btcforecast.market import LocalParquetStore, import_into_store
from btcforecast.seeding import ensure_market_data, seed
from btcforecast.settings import CoreSettings
from btcforecast.training import TrainingParams

QUICK = TrainingParams(train_days=30, epochs=2, patience=2)


@pytest.fixture
def settings(tmp_path: Path, mlflow) -> CoreSettings:
    return CoreSettings(
        mlflow_tracking_uri=mlflow.url,
        state_dir=tmp_path,
        model_name=f"seed-{tmp_path.name}",
        btc_data_csv=None,
    )


def test_weekly_base_dates_include_both_ends() -> None:
    days = base_dates(date(2025, 1, 2), date(2025, 6, 26), parse_every("7d"))
    assert len(days) == 26 and days[0] == date(2025, 1, 2) and days[-1] == date(2025, 6, 26)
    assert all(d.weekday() == 3 for d in days)


def test_every_accepts_days_and_hours_only() -> None:
    assert parse_every("24h") == timedelta(days=1)
    with pytest.raises(ValueError, match="--every"):
        parse_every("weekly")


def test_existing_market_data_is_kept(settings: CoreSettings, market_bars: pd.DataFrame) -> None:
    store = LocalParquetStore(settings.resolved_market_data_uri)
    import_into_store(market_bars, store)
    info, imported = ensure_market_data(settings, store, online=False)
    assert not imported and info.rows == len(market_bars)


def test_without_data_or_network_synthetic_bars_are_labelled(settings: CoreSettings) -> None:
    store = LocalParquetStore(settings.resolved_market_data_uri)
    info, imported = ensure_market_data(settings, store, online=False)
    assert imported and info.synthetic and info.source == "synthetic"


def test_seed_trains_missing_backtests_and_sets_serving_aliases_once(
    settings: CoreSettings, market_bars: pd.DataFrame
) -> None:
    store = LocalParquetStore(settings.resolved_market_data_uri)
    import_into_store(market_bars, store)
    client = registry.connect(settings.mlflow_tracking_uri)
    window = {"start": date(2025, 3, 27), "end": date(2025, 4, 3), "params": QUICK}

    first = seed(settings, client, store, **window)
    assert [r.alias for r in first.trained] == ["backtest_20250327", "backtest_20250403"]
    newest = first.trained[-1].version
    assert first.aliases_set == {"staging": newest, "production": newest}

    again = seed(settings, client, store, **window)
    assert again.trained == [] and again.aliases_set == {}
