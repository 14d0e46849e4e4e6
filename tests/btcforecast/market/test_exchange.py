"""Exchange download against a local HTTP server that answers like Coinbase Exchange's candles API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pandas as pd
import pytest

from btcforecast.market import (
    DownloadInterrupted,
    LocalParquetStore,
    download_bars,
    download_into_store,
    generate_bars,
    with_source,
)
from btcforecast.market.exchange import MAX_CANDLES, CoinbaseCandles, parse_candles

START, END = "2024-01-01 00:00", "2024-01-31 23:00"  # 744 hours: three pages


@dataclass
class FakeCoinbase:
    """Serves ``bars`` as Coinbase candles; 429 or 503 on chosen request numbers (1-based)."""

    bars: pd.DataFrame
    throttle: set[int] = field(default_factory=set)
    fail_from: int | None = None
    requests: list[dict[str, str]] = field(default_factory=list)

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, str], object]:
        self.requests.append(query)
        n = len(self.requests)
        if n in self.throttle:
            return 429, {"Retry-After": "1"}, {"message": "Public rate limit exceeded"}
        if self.fail_from is not None and n >= self.fail_from:
            return 503, {}, {"message": "service unavailable"}
        if path != "/products/BTC-USD/candles" or query.get("granularity") != "3600":
            return 404, {}, {"message": "NotFound"}
        start, end = pd.Timestamp(query["start"]), pd.Timestamp(query["end"])
        if (end - start) / pd.Timedelta(hours=1) + 1 > MAX_CANDLES:
            return 400, {}, {"message": "granularity too small for the requested time range"}
        window = self.bars.loc[start:end].iloc[::-1]  # newest first, like Coinbase
        candles = [
            [int(ts.timestamp()), r.low, r.high, r.open, r.close, r.volume]
            for ts, r in zip(window.index, window.itertuples(), strict=True)
        ]
        return 200, {}, candles


@pytest.fixture
def exchange() -> Iterator[tuple[FakeCoinbase, str]]:
    fake = FakeCoinbase(bars=generate_bars(START, END, seed=5))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            status, headers, body = fake.answer(url.path, query)
            data = json.dumps(body).encode()
            self.send_response(status)
            for k, v in {"Content-Type": "application/json", **headers}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0, trust_env=False) as c:
        yield c


class Sleeps(list[float]):
    """Records requested sleeps instead of sleeping, so retries cost no time."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _download(base: str, client: httpx.Client, **kw: object) -> pd.DataFrame:
    options: dict[str, object] = {"client": client, "base_url": base, "min_interval": 0.0, "sleep": Sleeps()}
    options.update(kw)
    return download_bars(START, END, **options)  # type: ignore[arg-type]


def test_download_pages_through_more_than_300_candles(
    exchange: tuple[FakeCoinbase, str], client: httpx.Client
) -> None:
    fake, base = exchange
    bars = _download(base, client)
    pd.testing.assert_frame_equal(bars, fake.bars, check_like=False, rtol=1e-12)
    assert len(fake.requests) == 3
    assert bars.attrs["source"] == "exchange:coinbase"


def test_each_request_asks_for_at_most_300_hours(
    exchange: tuple[FakeCoinbase, str], client: httpx.Client
) -> None:
    fake, base = exchange
    _download(base, client)
    spans = [
        (pd.Timestamp(q["end"]) - pd.Timestamp(q["start"])) / pd.Timedelta(hours=1) + 1 for q in fake.requests
    ]
    assert max(spans) <= MAX_CANDLES


def test_rate_limit_429_is_retried_after_the_servers_retry_after(
    exchange: tuple[FakeCoinbase, str], client: httpx.Client
) -> None:
    fake, base = exchange
    fake.throttle = {2}
    sleeps = Sleeps()
    bars = _download(base, client, sleep=sleeps)
    assert len(bars) == len(fake.bars)
    assert 1.0 in sleeps
    assert fake.requests[1] == fake.requests[2]  # the throttled window was asked again


def test_download_resumes_after_the_last_existing_bar(
    exchange: tuple[FakeCoinbase, str], client: httpx.Client
) -> None:
    fake, base = exchange
    have = with_source(fake.bars.iloc[:400].copy(), "exchange:coinbase")
    bars = _download(base, client, existing=have)
    pd.testing.assert_frame_equal(bars, fake.bars, rtol=1e-12)
    assert pd.Timestamp(fake.requests[0]["start"]) == fake.bars.index[400]


def test_interrupted_download_returns_what_it_fetched(
    exchange: tuple[FakeCoinbase, str], client: httpx.Client
) -> None:
    fake, base = exchange
    fake.fail_from = 2
    progress: list[int] = []
    with pytest.raises(DownloadInterrupted) as info:
        _download(base, client, max_retries=1, on_progress=lambda df: progress.append(len(df)))
    assert len(info.value.partial) == MAX_CANDLES
    assert progress == [MAX_CANDLES]


def test_download_into_store_continues_where_an_interrupted_one_stopped(
    exchange: tuple[FakeCoinbase, str], client: httpx.Client, tmp_path: Path
) -> None:
    fake, base = exchange
    store = LocalParquetStore(tmp_path / "bars.parquet", check_interval=0.0)
    options = {"client": client, "base_url": base, "min_interval": 0.0, "sleep": Sleeps(), "max_retries": 0}
    fake.fail_from = 3
    with pytest.raises(DownloadInterrupted):
        download_into_store(store, START, END, **options)  # type: ignore[arg-type]
    assert store.info().rows == 2 * MAX_CANDLES
    fake.fail_from, fake.requests = None, []
    report = download_into_store(store, START, END, **options)  # type: ignore[arg-type]
    assert report.rows == len(fake.bars)
    assert len(fake.requests) == 1
    pd.testing.assert_frame_equal(store.read(), fake.bars, rtol=1e-12)


def test_requests_are_spaced_by_the_minimum_interval(
    exchange: tuple[FakeCoinbase, str], client: httpx.Client
) -> None:
    _, base = exchange
    sleeps = Sleeps()
    candles = CoinbaseCandles(client, base_url=base, min_interval=0.25, sleep=sleeps, clock=lambda: 0.0)
    candles.fetch(pd.Timestamp(START, tz="UTC"), pd.Timestamp("2024-01-01 05:00", tz="UTC"))
    candles.fetch(pd.Timestamp("2024-01-01 06:00", tz="UTC"), pd.Timestamp("2024-01-01 09:00", tz="UTC"))
    assert sleeps == [0.25]


def test_candles_in_coinbase_order_become_canonical_bars() -> None:
    payload = [[1704070800, 99.0, 110.0, 100.0, 105.0, 2.5], [1704067200, 95.0, 101.0, 96.0, 100.0, 1.0]]
    bars = parse_candles(payload, "exchange:coinbase")
    assert list(bars.index) == list(pd.date_range("2024-01-01", periods=2, freq="h", tz="UTC"))
    assert bars.iloc[1].to_dict() == {
        "open": 100.0,
        "high": 110.0,
        "low": 99.0,
        "close": 105.0,
        "volume": 2.5,
    }
