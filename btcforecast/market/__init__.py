"""Market data: the canonical hourly bars, their sources (CSV, exchange, synthetic) and the store."""

from __future__ import annotations

from btcforecast.market.bars import (
    COLUMNS,
    DEFAULT_END,
    DEFAULT_START,
    INDEX_NAME,
    SYNTHETIC,
    BarsReport,
    Gap,
    MarketDataError,
    is_synthetic,
    make_bars,
    source_of,
    validate_bars,
    with_source,
)
from btcforecast.market.csv_import import read_csv
from btcforecast.market.exchange import DownloadInterrupted, download_bars
from btcforecast.market.sources import download_into_store, import_csv, import_into_store, load_market_data
from btcforecast.market.store import (
    LocalParquetStore,
    MarketDataNotFound,
    MarketDataUnavailable,
    MarketStore,
    S3ParquetStore,
    StoreInfo,
    open_store,
)
from btcforecast.market.synthetic import generate_bars

__all__ = [
    "COLUMNS",
    "DEFAULT_END",
    "DEFAULT_START",
    "INDEX_NAME",
    "SYNTHETIC",
    "BarsReport",
    "DownloadInterrupted",
    "Gap",
    "LocalParquetStore",
    "MarketDataError",
    "MarketDataNotFound",
    "MarketDataUnavailable",
    "MarketStore",
    "S3ParquetStore",
    "StoreInfo",
    "download_bars",
    "download_into_store",
    "generate_bars",
    "import_csv",
    "import_into_store",
    "is_synthetic",
    "load_market_data",
    "make_bars",
    "open_store",
    "read_csv",
    "source_of",
    "validate_bars",
    "with_source",
]
