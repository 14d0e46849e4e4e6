"""The market data store, local file and real S3 (SeaweedFS): round trips, range reads, cache, atomicity."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import SecretStr

from btcforecast.devservers.process import free_port
from btcforecast.devservers.seaweedfs import SeaweedFS
from btcforecast.errors import Unavailable
from btcforecast.market import (
    LocalParquetStore,
    MarketDataNotFound,
    MarketDataUnavailable,
    MarketStore,
    S3ParquetStore,
    generate_bars,
    open_store,
    with_source,
)
from btcforecast.market.store import s3_client
from btcforecast.settings import CoreSettings

StoreFactory = Callable[..., MarketStore]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def small_bars() -> pd.DataFrame:
    return generate_bars("2024-02-01", "2024-02-10 23:00", seed=11)


@pytest.fixture(params=["local", "s3"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Stores of one backend that all point at the same object, each with its own cache."""
    if request.param == "local":
        path = tmp_path / "market" / "bars.parquet"
        return lambda **kw: LocalParquetStore(path, **kw)
    server: SeaweedFS = request.getfixturevalue("seaweedfs")
    client = s3_client(server.settings())
    key = f"tests/{uuid.uuid4().hex}.parquet"
    return lambda **kw: S3ParquetStore(server.bucket, key, client, **kw)


def test_round_trip_keeps_bars_and_source_label(make_store: StoreFactory, market_bars: pd.DataFrame) -> None:
    make_store().write(market_bars)
    back = make_store().read()
    pd.testing.assert_frame_equal(back, market_bars)
    assert back.attrs["source"] == market_bars.attrs["source"]


def test_range_read_is_inclusive_and_in_utc(make_store: StoreFactory, small_bars: pd.DataFrame) -> None:
    store = make_store()
    store.write(small_bars)
    part = store.read("2024-02-03 05:00", "2024-02-03 08:00")
    assert list(part.index) == list(pd.date_range("2024-02-03 05:00", periods=4, freq="h", tz="UTC"))
    assert part.attrs["source"] == "synthetic"


def test_repeated_range_reads_load_the_object_once(
    make_store: StoreFactory, small_bars: pd.DataFrame
) -> None:
    make_store().write(small_bars)
    reader = make_store(check_interval=0.0)
    for day in range(1, 9):
        reader.read(f"2024-02-0{day}", f"2024-02-0{day} 23:00")
    assert reader.load_count == 1


def test_cache_picks_up_an_object_replaced_by_another_writer(
    make_store: StoreFactory, small_bars: pd.DataFrame
) -> None:
    clock = FakeClock()
    reader = make_store(check_interval=5.0, clock=clock)
    make_store().write(small_bars)
    assert len(reader.read()) == len(small_bars)
    make_store().write(small_bars.iloc[:24])
    clock.now += 5.0
    assert len(reader.read()) == 24


def test_cache_is_not_revalidated_within_the_check_interval(
    make_store: StoreFactory, small_bars: pd.DataFrame
) -> None:
    clock = FakeClock()
    reader = make_store(check_interval=5.0, clock=clock)
    make_store().write(small_bars)
    reader.read()
    make_store().write(small_bars.iloc[:24])
    clock.now += 1.0
    assert len(reader.read()) == len(small_bars)


def test_peek_hands_back_the_cached_bars_only_while_they_are_fresh(
    small_bars: pd.DataFrame, tmp_path: Path
) -> None:
    clock = FakeClock()
    path = tmp_path / "bars.parquet"
    LocalParquetStore(path).write(small_bars)
    reader = LocalParquetStore(path, check_interval=5.0, clock=clock)
    assert reader.peek() is None  # nothing read yet
    reader.read()
    first = reader.peek()
    assert first is not None and len(first) == len(small_bars)
    assert reader.peek() is first
    clock.now += 5.0
    assert reader.peek() is None


def test_peek_after_a_write_is_a_new_object(small_bars: pd.DataFrame, tmp_path: Path) -> None:
    store = LocalParquetStore(tmp_path / "bars.parquet")
    store.write(small_bars)
    before = store.peek()
    store.write(small_bars.iloc[:24])
    after = store.peek()
    assert after is not before and after is not None and len(after) == 24


def test_read_returns_a_copy_the_caller_may_change(
    make_store: StoreFactory, small_bars: pd.DataFrame
) -> None:
    store = make_store()
    store.write(small_bars)
    store.read()["close"] = 0.0
    assert (store.read()["close"] > 0).all()


def test_empty_store_does_not_exist_and_reading_says_so(make_store: StoreFactory) -> None:
    store = make_store()
    assert not store.exists()
    assert not store.info().exists
    with pytest.raises(MarketDataNotFound):
        store.read()


def test_info_reports_rows_range_and_provenance(make_store: StoreFactory, small_bars: pd.DataFrame) -> None:
    store = make_store()
    store.write(small_bars)
    info = store.info()
    assert (info.exists, info.rows, info.first, info.last) == (
        True,
        240,
        small_bars.index[0],
        small_bars.index[-1],
    )
    assert info.source == "synthetic" and info.synthetic


def test_invalid_bars_are_never_written(make_store: StoreFactory, small_bars: pd.DataFrame) -> None:
    store = make_store()
    store.write(small_bars)
    broken = small_bars.copy()
    broken.iloc[3, 0] = -1.0
    with pytest.raises(ValueError, match="negative price"):
        store.write(broken)
    pd.testing.assert_frame_equal(make_store().read(), small_bars)


def test_failed_local_replace_keeps_previous_data_and_leaves_no_temp_file(
    tmp_path: Path, small_bars: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bars.parquet"
    LocalParquetStore(path).write(small_bars)

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr("btcforecast.market.store.os.replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        LocalParquetStore(path).write(small_bars.iloc[:5])
    monkeypatch.undo()
    pd.testing.assert_frame_equal(LocalParquetStore(path).read(), small_bars)
    assert [p.name for p in tmp_path.iterdir()] == ["bars.parquet"]


class CopyFails:
    """A boto3 client whose server-side copy (the final step of a write) fails."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def copy_object(self, **kwargs: Any) -> Any:
        from botocore.exceptions import EndpointConnectionError

        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")


def test_failed_s3_write_keeps_previous_data_and_leaves_no_temp_object(
    s3_settings: CoreSettings, small_bars: pd.DataFrame
) -> None:
    open_store(s3_settings).write(small_bars)
    client = s3_client(s3_settings)
    store = open_store(s3_settings, client=CopyFails(client))
    with pytest.raises(MarketDataUnavailable):
        store.write(small_bars.iloc[:5])
    pd.testing.assert_frame_equal(open_store(s3_settings).read(), small_bars)
    assert isinstance(store, S3ParquetStore)
    listed = client.list_objects_v2(Bucket=store.bucket, Prefix=store.key)
    assert [o["Key"] for o in listed.get("Contents", [])] == [store.key]


def test_s3_write_creates_a_missing_bucket(seaweedfs: SeaweedFS, small_bars: pd.DataFrame) -> None:
    settings = seaweedfs.settings(market_data_uri=f"s3://fresh-{uuid.uuid4().hex[:12]}/bars.parquet")
    open_store(settings).write(small_bars)
    assert open_store(settings).info().rows == len(small_bars)


def test_unreachable_s3_is_a_dependency_unavailable_error(tmp_path: Path) -> None:
    settings = CoreSettings(
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        market_data_uri="s3://market-data/bars.parquet",
    )
    with pytest.raises(MarketDataUnavailable) as info:
        open_store(settings).read()
    assert isinstance(info.value, Unavailable)


def test_wrong_s3_credentials_are_refused(s3_settings: CoreSettings) -> None:
    wrong = s3_settings.model_copy(update={"aws_secret_access_key": SecretStr("wrong")})
    with pytest.raises(MarketDataUnavailable, match=r"403|AccessDenied|SignatureDoesNotMatch"):
        open_store(wrong).read()


def test_settings_without_s3_open_the_local_default(tmp_path: Path) -> None:
    store = open_store(CoreSettings(state_dir=tmp_path, s3_endpoint_url=None, market_data_uri=None))
    assert isinstance(store, LocalParquetStore)
    assert store.path == tmp_path / "market" / "btc_usd_1h.parquet"


def test_source_label_survives_for_real_data(make_store: StoreFactory, small_bars: pd.DataFrame) -> None:
    store = make_store()
    store.write(with_source(small_bars.copy(), "exchange:coinbase"))
    assert make_store().read().attrs["source"] == "exchange:coinbase"
