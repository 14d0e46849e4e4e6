"""Download hourly BTC-USD candles from Coinbase Exchange's public REST API.

``GET {base}/products/{product}/candles?granularity=3600&start=ISO&end=ISO`` answers at most 300
candles, newest first, as ``[[time, low, high, open, close, volume], ...]`` (time in epoch seconds),
and rate-limits with HTTP 429. So the range is fetched in windows of 300 hours, with a minimum
interval between requests, honouring ``Retry-After`` (else exponential backoff) on 429 and 5xx.
A download resumes after the last bar of an existing frame, and every window fetched is handed to
``on_progress`` so an interrupted download keeps what it got; the exception it ends with,
:class:`DownloadInterrupted`, carries the partial frame too. Hours without trades have no candle:
they show up as gaps in the report, not as errors.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pandas as pd

from btcforecast.market.bars import (
    COLUMNS,
    HOUR,
    MarketDataError,
    empty_bars,
    is_synthetic,
    make_bars,
    validate_bars,
)
from btcforecast.market.store import MarketDataUnavailable

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.exchange.coinbase.com"
DEFAULT_PRODUCT = "BTC-USD"
EXCHANGE_NAME = "coinbase"
GRANULARITY = 3600
MAX_CANDLES = 300
DEFAULT_MIN_INTERVAL = 0.35  # seconds between requests; Coinbase allows about 10 public requests/s
DEFAULT_MAX_RETRIES = 6
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
_MAX_BACKOFF = 60.0


class DownloadInterrupted(MarketDataUnavailable):
    """The exchange stopped answering mid-download; ``partial`` holds every bar fetched so far."""

    def __init__(self, message: str, partial: pd.DataFrame) -> None:
        super().__init__(message)
        self.partial = partial


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_candles(payload: Any, source: str) -> pd.DataFrame:
    """Coinbase's ``[[time, low, high, open, close, volume], ...]`` (any order) as canonical bars."""
    if not isinstance(payload, list):
        raise MarketDataError(f"exchange answered {type(payload).__name__}, expected a list of candles")
    if not payload:
        return empty_bars(source)
    try:
        arr = np.asarray(payload, dtype="float64")
    except (TypeError, ValueError) as e:
        raise MarketDataError(f"exchange answered malformed candles: {e}") from e
    if arr.ndim != 2 or arr.shape[1] != 6:
        raise MarketDataError(f"exchange candles must have 6 fields, got shape {arr.shape}")
    arr = arr[np.argsort(arr[:, 0], kind="stable")]
    index = pd.to_datetime(arr[:, 0].astype("int64"), unit="s", utc=True)
    time_, low, high, open_, close, volume = arr.T
    del time_
    return make_bars(
        index, {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, source
    )


class CoinbaseCandles:
    """A paced, retrying client for the candles endpoint; one instance per download."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        base_url: str = DEFAULT_BASE_URL,
        product: str = DEFAULT_PRODUCT,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        max_retries: int = DEFAULT_MAX_RETRIES,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client, self.product = client, product
        self.url = f"{base_url.rstrip('/')}/products/{product}/candles"
        self.min_interval, self.max_retries = min_interval, max_retries
        self._sleep, self._clock = sleep, clock
        self._last_request: float | None = None
        self.source = f"exchange:{EXCHANGE_NAME}"

    def _pace(self) -> None:
        if self._last_request is not None:
            wait = self.min_interval - (self._clock() - self._last_request)
            if wait > 0:
                self._sleep(wait)
        self._last_request = self._clock()

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Candles from ``start`` to ``end`` inclusive (at most 300 hours), retrying 429 and 5xx."""
        params = {"granularity": str(GRANULARITY), "start": _iso(start), "end": _iso(end)}
        for attempt in range(self.max_retries + 1):
            self._pace()
            try:
                response = self.client.get(self.url, params=params)
            except httpx.TransportError as e:
                if attempt == self.max_retries:
                    raise MarketDataUnavailable(f"cannot reach {self.url}: {e}") from e
                self._sleep(min(_MAX_BACKOFF, 2.0**attempt))
                continue
            if response.status_code == 429 or response.status_code >= 500:
                if attempt == self.max_retries:
                    raise MarketDataUnavailable(
                        f"{self.url} answered {response.status_code} {self.max_retries + 1} times"
                    )
                delay = _retry_after(response) or min(_MAX_BACKOFF, 2.0**attempt)
                log.info("exchange answered %s; retrying in %.1f s", response.status_code, delay)
                self._sleep(delay)
                continue
            if response.status_code != 200:
                raise MarketDataError(f"{self.url} answered {response.status_code}: {response.text[:200]}")
            return parse_candles(response.json(), self.source)
        raise AssertionError("unreachable")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def download_bars(
    start: Any,
    end: Any,
    *,
    existing: pd.DataFrame | None = None,
    client: httpx.Client | None = None,
    base_url: str = DEFAULT_BASE_URL,
    product: str = DEFAULT_PRODUCT,
    min_interval: float = DEFAULT_MIN_INTERVAL,
    max_retries: int = DEFAULT_MAX_RETRIES,
    on_progress: Callable[[pd.DataFrame], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> pd.DataFrame:
    """Hourly bars from ``start`` to ``end`` inclusive, appended to ``existing`` if given.

    With ``existing``, only hours after its last bar are fetched (resume). After each window,
    ``on_progress`` receives everything so far (``existing`` plus new bars). On failure raises
    :class:`DownloadInterrupted` with that same partial frame. The result is validated.
    """
    first, last = _utc(start).ceil("h"), _utc(end).floor("h")
    have = existing if existing is not None and len(existing) else None
    if have is not None:
        if is_synthetic(have):
            raise MarketDataError(
                "refusing to append exchange bars to synthetic data; start a fresh download"
            )
        first = max(first, have.index[-1] + HOUR)
    own_client = client is None
    http = client or httpx.Client(timeout=DEFAULT_TIMEOUT, headers={"User-Agent": "btc-forecast"})
    fetcher = CoinbaseCandles(
        http,
        base_url=base_url,
        product=product,
        min_interval=min_interval,
        max_retries=max_retries,
        sleep=sleep,
    )
    parts: list[pd.DataFrame] = [have] if have is not None else []
    collected = _combine(parts, fetcher.source)
    try:
        window_start = first
        while window_start <= last:
            window_end = min(last, window_start + (MAX_CANDLES - 1) * HOUR)
            try:
                page = fetcher.fetch(window_start, window_end)
            except MarketDataUnavailable as e:
                raise DownloadInterrupted(
                    f"download stopped at {_iso(window_start)} with {len(collected)} bars kept: {e}",
                    collected,
                ) from e
            # The exchange may round the window outward; keep only what was asked for.
            page = page.loc[window_start:window_end]
            if len(page):
                parts.append(page)
                collected = _combine(parts, fetcher.source)
                parts = [collected]
            log.info("downloaded %s .. %s: %d bars", _iso(window_start), _iso(window_end), len(page))
            if on_progress is not None:
                on_progress(collected)
            window_start = window_end + HOUR
    finally:
        if own_client:
            http.close()
    validate_bars(collected)
    return collected


def _combine(parts: list[pd.DataFrame], source: str) -> pd.DataFrame:
    if not parts:
        return empty_bars(source)
    df = pd.concat(parts) if len(parts) > 1 else parts[0]
    df = df[~df.index.duplicated(keep="last")].sort_index()
    df = df.loc[:, list(COLUMNS)]
    # Resuming someone else's bars (e.g. an imported CSV) keeps both names: "csv:x.csv+exchange:coinbase".
    labels = [label for p in parts for label in str(p.attrs.get("source") or source).split("+")]
    df.attrs["source"] = "+".join(dict.fromkeys(labels))
    return df
