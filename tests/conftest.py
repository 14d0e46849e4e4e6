"""Fixtures shared by the whole suite: a real SeaweedFS S3 server and the market bars to use.

``market_bars`` is the real BTC file when ``BTC_DATA_CSV`` points at it, else deterministic
synthetic bars for the same default period, so every test runs with and without the real data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from btcforecast.devservers.seaweedfs import SeaweedFS, start_seaweedfs
from btcforecast.market import generate_bars, read_csv
from btcforecast.settings import CoreSettings


@pytest.fixture(scope="session")
def real_csv_path() -> Path:
    """The real hourly BTC CSV named by BTC_DATA_CSV; skips the test when it is not set."""
    value = os.environ.get("BTC_DATA_CSV")
    if not value:
        pytest.skip("BTC_DATA_CSV is not set")
    path = Path(value)
    if not path.is_file():
        pytest.skip(f"BTC_DATA_CSV={value} is not a file")
    return path


@pytest.fixture(scope="session")
def market_bars() -> pd.DataFrame:
    """Hourly bars 2024-01-01 .. 2025-07-31: real when BTC_DATA_CSV is set, else synthetic.

    Session-scoped: copy before changing it.
    """
    value = os.environ.get("BTC_DATA_CSV")
    if value and Path(value).is_file():
        return read_csv(value)
    return generate_bars()


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A real SeaweedFS S3 server on free loopback ports, credentials required, bucket market-data."""
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs-state"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_settings(seaweedfs: SeaweedFS) -> CoreSettings:
    """CoreSettings for the session's SeaweedFS with a market-data key of this test's own."""
    return seaweedfs.settings(market_data_uri=f"s3://{seaweedfs.bucket}/tests/{uuid.uuid4().hex}.parquet")
