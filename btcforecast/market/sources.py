"""Choose where market data comes from, and put it into the store safely.

The order is the design's: a CSV the user configured (``BTC_DATA_CSV``) wins; otherwise download
from the exchange when we may go online; otherwise generate synthetic bars for the default period
and say so loudly, because a model trained on them forecasts nothing real. Imports validate before
they write, so a bad file never replaces good data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from btcforecast.market.bars import DEFAULT_END, DEFAULT_START, BarsReport, validate_bars
from btcforecast.market.csv_import import read_csv
from btcforecast.market.exchange import DEFAULT_BASE_URL, DownloadInterrupted, download_bars
from btcforecast.market.store import MarketDataNotFound, MarketStore
from btcforecast.market.synthetic import DEFAULT_SEED, generate_bars
from btcforecast.settings import CoreSettings

log = logging.getLogger(__name__)

SYNTHETIC_WARNING = (
    "NO REAL MARKET DATA CONFIGURED: using SYNTHETIC bars for %s .. %s (seed %d). "
    "Models trained on them are labelled 'synthetic' and forecast nothing real. "
    "Set BTC_DATA_CSV to a CSV of hourly bars, or run `btcf data download` online."
)


def load_market_data(
    settings: CoreSettings,
    *,
    online: bool,
    start: Any = DEFAULT_START,
    end: Any = DEFAULT_END,
    base_url: str = DEFAULT_BASE_URL,
    client: httpx.Client | None = None,
    seed: int = DEFAULT_SEED,
) -> pd.DataFrame:
    """Bars from ``BTC_DATA_CSV`` if set, else the exchange if ``online``, else synthetic (warned)."""
    if settings.btc_data_csv is not None:
        log.info("market data: reading %s", settings.btc_data_csv)
        return read_csv(settings.btc_data_csv)
    if online:
        log.info("market data: downloading %s .. %s from %s", start, end, base_url)
        return download_bars(start, end, base_url=base_url, client=client)
    log.warning(SYNTHETIC_WARNING, start, end, seed)
    return generate_bars(start, end, seed=seed)


def import_into_store(df: pd.DataFrame, store: MarketStore) -> BarsReport:
    """Validate ``df`` and replace the store's data with it; on any error nothing is written."""
    report = validate_bars(df)
    store.write(df)
    if report.gaps:
        log.warning(
            "imported %d bars with %d missing hours in %d gaps",
            report.rows,
            report.missing_hours,
            len(report.gaps),
        )
    return report


def import_csv(path: str | Path, store: MarketStore) -> BarsReport:
    """``btcf data import CSV``: read, validate and store a CSV; a bad file changes nothing."""
    return import_into_store(read_csv(path), store)


def download_into_store(
    store: MarketStore,
    start: Any = DEFAULT_START,
    end: Any = DEFAULT_END,
    *,
    base_url: str = DEFAULT_BASE_URL,
    client: httpx.Client | None = None,
    checkpoint_every: int = 10,
    on_progress: Callable[[pd.DataFrame], None] | None = None,
    **download_options: Any,
) -> BarsReport:
    """``btcf data download``: fetch bars into the store, resuming after what it already holds.

    Progress is written to the store every ``checkpoint_every`` windows and when the download is
    interrupted, so running the command again continues where it stopped. Synthetic data in the
    store is replaced, never extended.
    """
    try:
        existing = store.read()
    except MarketDataNotFound:
        existing = None
    if existing is not None and existing.attrs.get("source") == "synthetic":
        existing = None
    windows = 0

    def progress(df: pd.DataFrame) -> None:
        nonlocal windows
        windows += 1
        if checkpoint_every and windows % checkpoint_every == 0 and len(df):
            store.write(df)
        if on_progress is not None:
            on_progress(df)

    try:
        df = download_bars(
            start,
            end,
            existing=existing,
            client=client,
            base_url=base_url,
            on_progress=progress,
            **download_options,
        )
    except DownloadInterrupted as e:
        if len(e.partial):
            store.write(e.partial)
        raise
    return import_into_store(df, store)
