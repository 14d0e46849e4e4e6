"""The local S3 server: real SeaweedFS, credentials required, survives a restart."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from btcforecast.devservers import seaweedfs as sw
from btcforecast.devservers.seaweedfs import SeaweedFS
from btcforecast.market import MarketDataUnavailable, generate_bars, open_store


def test_session_server_serves_the_bucket_with_its_keys(seaweedfs: SeaweedFS) -> None:
    from btcforecast.market.store import s3_client

    client = s3_client(seaweedfs.settings())
    assert seaweedfs.endpoint_url.startswith("http://127.0.0.1:")
    client.head_bucket(Bucket=seaweedfs.bucket)


def test_data_survives_a_killed_and_restarted_server(tmp_path: Path) -> None:
    server = sw.seaweedfs(tmp_path, bucket="survive")
    bars = generate_bars("2024-01-01", "2024-01-03", seed=4)
    with server:
        settings = server.settings(market_data_uri="s3://survive/bars.parquet")
        open_store(settings).write(bars)
        server.kill()
        with pytest.raises(MarketDataUnavailable):
            open_store(settings).read()
        server.restart()
        pd.testing.assert_frame_equal(open_store(settings).read(), bars)
    assert not server.process.running
