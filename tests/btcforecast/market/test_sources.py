"""Choosing the data source, and imports that write nothing when they fail."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pandas as pd
import pytest

from btcforecast.market import (
    LocalParquetStore,
    MarketDataError,
    generate_bars,
    import_csv,
    import_into_store,
    is_synthetic,
    load_market_data,
)
from btcforecast.settings import CoreSettings


def _csv(path: Path, bars: pd.DataFrame) -> Path:
    bars.rename_axis("timestamps").to_csv(path)
    return path


def test_configured_csv_wins(tmp_path: Path) -> None:
    path = _csv(tmp_path / "mine.csv", generate_bars("2024-06-01", "2024-06-02", seed=9))
    settings = CoreSettings(state_dir=tmp_path, btc_data_csv=path)
    bars = load_market_data(
        settings, online=True, client=httpx.Client(transport=httpx.MockTransport(_no_calls))
    )
    assert bars.attrs["source"] == "csv:mine.csv"
    assert len(bars) == 25


def _no_calls(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected request to {request.url}")


def test_online_without_csv_downloads_from_the_exchange(tmp_path: Path) -> None:
    def candles(request: httpx.Request) -> httpx.Response:
        start = pd.Timestamp(request.url.params["start"])
        return httpx.Response(200, content=json.dumps([[int(start.timestamp()), 1.0, 3.0, 2.0, 2.5, 10.0]]))

    client = httpx.Client(transport=httpx.MockTransport(candles))
    settings = CoreSettings(state_dir=tmp_path, btc_data_csv=None)
    bars = load_market_data(
        settings,
        online=True,
        start="2024-01-01",
        end="2024-01-01 03:00",
        client=client,
        base_url="http://exchange.test",
    )
    assert bars.attrs["source"] == "exchange:coinbase"
    assert len(bars) == 1


def test_offline_without_csv_falls_back_to_synthetic_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = CoreSettings(state_dir=tmp_path, btc_data_csv=None)
    with caplog.at_level(logging.WARNING):
        bars = load_market_data(settings, online=False)
    assert is_synthetic(bars)
    assert len(bars) == 13_872
    assert "SYNTHETIC" in caplog.text


def test_failed_import_leaves_previous_data_intact(tmp_path: Path) -> None:
    store = LocalParquetStore(tmp_path / "store" / "bars.parquet", check_interval=0.0)
    good = generate_bars("2024-06-01", "2024-06-03", seed=2)
    import_into_store(good, store)
    broken = generate_bars("2024-07-01", "2024-07-03", seed=2)
    broken.iloc[4, broken.columns.get_loc("close")] = -10.0
    path = _csv(tmp_path / "broken.csv", broken)
    with pytest.raises(MarketDataError, match=r"row 5, column 'close': negative price"):
        import_csv(path, store)
    pd.testing.assert_frame_equal(store.read(), good)
    assert [p.name for p in store.path.parent.iterdir()] == ["bars.parquet"]


def test_import_csv_stores_the_file_with_its_label(tmp_path: Path) -> None:
    store = LocalParquetStore(tmp_path / "bars.parquet")
    path = _csv(tmp_path / "mine.csv", generate_bars("2024-06-01", "2024-06-02", seed=9))
    report = import_csv(path, store)
    assert report.rows == 25
    assert store.info().source == "csv:mine.csv"
