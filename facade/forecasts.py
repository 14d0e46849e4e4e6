"""The facade's use cases: forecasts for an alias, the stitched champion backtest, market bars.

An alias is resolved to a version in MLflow here (an answer at most ``alias_cache_seconds`` old),
and the predictor is asked for that version explicitly (never "whatever is live"), so results can
be cached per (version, range): a moved alias resolves to another version and so to another cache entry,
and a stale answer is never served. The one exception is the first request for an alias this
process has never resolved: nothing is cached under it yet, so the predictor is asked for the
alias, resolves it itself (freshly, in MLflow) and names the version that answered, which saves one
MLflow round trip on the slowest request there is (see :meth:`Forecaster.first_sight`).
Market data, feature frames and windows are built here; the predictor only runs the network.

Each part carries the version's quantile predictions ([N, Q]; the median is the point forecast,
the lowest and highest quantile the 80% interval) and a ``BacktestReport`` from
``btcforecast.evaluation.backtest_report``, the same metric functions as training and the gate use.
Predictions are cached per (version, range); reports per (data, version, range), since a report
also reads the closes around the range (the naive band looks 30 days back); whole forecasts per
(data, alias, version, range), and with them their encoded response bodies (``Forecast.encoded``,
filled by facade/api/format.py), so a repeated request is answered without formatting anything.
What depends on the market data alone (features, the baselines' rolling volatility and quantiles)
is computed once per version of the data and kept with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date
from typing import Generic, TypeVar

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from btcforecast import registry
from btcforecast.alias_names import backtest_date, normalize_alias
from btcforecast.baselines import Baselines
from btcforecast.errors import NotFound
from btcforecast.evaluation import POINT_QUANTILE, BacktestReport, backtest_report
from btcforecast.features import WINDOW, compute_features, feature_matrix, windows_for_range
from btcforecast.market import MarketStore, is_synthetic, source_of
from facade.alias_cache import AliasCache
from facade.champion_plan import Segment, stitch_plan
from facade.metrics import record_alias_cache, record_result_cache
from facade.predictor_client import (
    PredictorClient,
    PredictorNotFound,
    PredictorUnavailable,
    QuantilePredictions,
)
from facade.time_range import OutOfData, check_range

log = logging.getLogger("facade.forecasts")
INFO_START = pd.Timestamp("2025-04-01 00:00", tz="UTC")
INFO_END = pd.Timestamp("2025-06-30 23:00", tz="UTC")
CHAMPION_CONCURRENCY = 4
"""Versions of a champion backtest asked of the predictor at once. It is one process answering them
in turn, so more only makes the HTTP client's connection pool scan more connections per request."""


@dataclass(frozen=True)
class Part:
    """Predictions of one model version over consecutive hours.

    ``predictions`` is the point forecast (the median) [N]; ``lower`` and ``upper`` the 80% interval
    (the lowest and highest quantile) [N], None for a point-only version; ``quantiles`` every
    predicted quantile [N, Q], column ``j`` being quantile ``quantile_levels[j]`` (increasing).
    """

    alias: str
    version: str
    hours: pd.DatetimeIndex
    predictions: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    quantiles: np.ndarray
    metrics: BacktestReport
    quantile_levels: tuple[float, ...] = (POINT_QUANTILE,)


@dataclass(frozen=True)
class Forecast:
    """One or more parts over consecutive hours; ``overall`` is the report over all of them.

    The overall report has interval figures only when every part predicts the same quantiles;
    otherwise it reports the point forecasts alone (interval, naive band and pinball ratio null).
    """

    start: pd.Timestamp
    end: pd.Timestamp
    parts: list[Part]
    overall: BacktestReport
    data_source: str
    synthetic: bool
    encoded: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)
    """Response bodies already encoded for this forecast, by format name (see facade/api/format.py).
    A cached forecast is immutable, so its body is encoded once."""

    @property
    def n(self) -> int:
        return sum(len(p.hours) for p in self.parts)


@dataclass
class _Frames:
    """One version of the market data and what is derived from it alone."""

    key: tuple[object, ...]
    bars: pd.DataFrame
    features: pd.DataFrame
    matrix: np.ndarray
    """``features`` as float32 [rows, F], what windows are cut from."""
    closes: pd.Series
    baselines: Baselines
    source: pd.DataFrame | None = None
    """The store's own frame these were checked against (see ``MarketStore.peek``)."""


T = TypeVar("T")


@dataclass
class ResultCache(Generic[T]):
    """A small LRU: predictions by (model name, version, start, end), reports by data and parts.

    Versions are immutable, so a prediction is never stale; a report's key includes the data's key.
    """

    capacity: int
    _items: OrderedDict[tuple[object, ...], T] = field(default_factory=OrderedDict)

    def get(self, key: tuple[object, ...]) -> T | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: tuple[object, ...], value: T) -> None:
        if self.capacity <= 0:
            return
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


class Forecaster:
    """Builds forecasts from the market store, the registry and the predictor."""

    def __init__(
        self,
        *,
        store: MarketStore,
        mlflow: MlflowClient,
        predictor: PredictorClient,
        model_name: str,
        champion_start: date,
        cache_size: int = 128,
        alias_cache_seconds: float = 0.0,
        forecast_cache_size: int | None = None,
    ) -> None:
        """``forecast_cache_size``: whole forecasts kept with their encoded bodies (about 1 MB each
        for 3,000 hours); by default ``min(cache_size, 16)``."""
        self.store = store
        self.mlflow = mlflow
        self.predictor = predictor
        self.model_name = model_name
        self.champion_start = champion_start
        self.cache: ResultCache[QuantilePredictions] = ResultCache(cache_size)
        self.reports: ResultCache[BacktestReport] = ResultCache(cache_size)
        forecasts = min(cache_size, 16) if forecast_cache_size is None else forecast_cache_size
        self.forecasts: ResultCache[Forecast] = ResultCache(forecasts)
        self._frames: _Frames | None = None
        self._base_dates: dict[str, date | None] = {}
        self._last_resolved: dict[str, str] = {}
        """The version each alias was last resolved to (here, or by the predictor: :meth:`first_sight`)."""
        self._last_aliases: dict[str, str] | None = None
        self.alias_cache: AliasCache[str] = AliasCache(alias_cache_seconds)

    # --- data -----------------------------------------------------------------------------
    async def frames(self) -> _Frames:
        """All bars and their features; features are recomputed only when the data changed.

        While the store's copy is fresh (revalidated within its check interval) this is a lookup:
        the store hands back the same object until the data is replaced.
        """
        current = self._frames
        if current is not None and current.source is not None and self.store.peek() is current.source:
            return current
        bars = await asyncio.to_thread(self.store.read)
        if bars.empty:
            raise OutOfData("the market data store is empty")
        key = _data_key(bars)
        if current is None or current.key != key:
            current = await asyncio.to_thread(_derive, key, bars)
        source = self.store.peek()  # what read() just revalidated, unless replaced meanwhile
        current.source = source if source is not None and _data_key(source) == key else None
        self._frames = current
        return current

    async def bars(self, start: pd.Timestamp | None, end: pd.Timestamp | None) -> pd.DataFrame:
        """Bars in [start, end] (defaults: the /btc-info period); 409 when none of it is in the data."""
        start = INFO_START if start is None else start
        end = INFO_END if end is None else end
        if start > end:
            raise OutOfData(f"start {start:%Y-%m-%d %H:%M} is after end {end:%Y-%m-%d %H:%M}")
        frames = await self.frames()
        index = frames.bars.index
        if end < index[0] or start > index[-1]:
            raise OutOfData(
                f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} is outside the data "
                f"({index[0]:%Y-%m-%d %H:%M} .. {index[-1]:%Y-%m-%d %H:%M})"
            )
        return frames.bars.loc[start:end]

    # --- registry -------------------------------------------------------------------------
    # While MLflow is unreachable, forecasts keep using the versions aliases pointed at when it was
    # last reached: versions are immutable and the predictor keeps loaded ones without MLflow. An
    # alias moved during the outage is followed as soon as MLflow answers again. /aliases and
    # /reload still answer 503 (they are about the registry itself).
    # Resolutions are cached for at most ``alias_cache.ttl`` seconds (facade/alias_cache.py), and
    # dropped at once when an MLflow webhook says the alias moved.
    async def aliases(self, *, fresh: bool = False) -> dict[str, str]:
        """The registry's aliases (RegistryUnavailable when MLflow is down); ``fresh`` asks MLflow
        even when a cached listing is within its bound (what /health reports is MLflow now)."""
        cached = None if fresh else self.alias_cache.get_listing()
        if not fresh:
            record_alias_cache(cached is not None)
        if cached is not None:
            return cached
        asked_at = self.alias_cache.now()
        aliases = await asyncio.to_thread(registry.list_aliases, self.mlflow, self.model_name)
        self._last_aliases = aliases
        self.alias_cache.put_listing(aliases, asked_at)
        return aliases

    def alias_moved(self, model: str, alias: str) -> bool:
        """An MLflow webhook reported ``alias`` of ``model`` set or deleted; True if it is ours."""
        if model != self.model_name:
            return False
        self.alias_cache.invalidate(alias)
        return True

    async def _aliases_for_forecast(self) -> dict[str, str]:
        try:
            return await self.aliases()
        except registry.RegistryUnavailable:
            if self._last_aliases is None:
                raise
            log.warning("MLflow unreachable: stitching with the aliases it last listed")
            return self._last_aliases

    async def resolve(self, alias: str) -> str:
        """The version ``alias`` points at; while MLflow is down, the one it pointed at last."""
        cached = self.alias_cache.get(alias)
        record_alias_cache(cached is not None)
        if cached is not None:
            return cached
        asked_at = self.alias_cache.now()
        try:
            resolved = await asyncio.to_thread(registry.resolve, self.mlflow, self.model_name, alias)
        except registry.RegistryUnavailable:
            known = self._last_resolved.get(alias)
            if known is None:
                raise
            log.warning("MLflow unreachable: serving %s at version %s, as last resolved", alias, known)
            return known
        self._remember(alias, resolved.version, asked_at)
        return resolved.version

    def _remember(self, alias: str, version: str, asked_at: float) -> None:
        """``alias`` was resolved to ``version`` by an answer asked for at ``asked_at``."""
        self._last_resolved[alias] = version
        self.alias_cache.put(alias, version, asked_at)

    async def base_date(self, version: str) -> date | None:
        """The training base date recorded on a version (immutable, so cached)."""
        if version not in self._base_dates:
            mv = await asyncio.to_thread(self.mlflow.get_model_version, self.model_name, version)
            raw = (mv.tags or {}).get("base_date")
            self._base_dates[version] = date.fromisoformat(raw) if raw else None
        return self._base_dates[version]

    # --- forecasts ------------------------------------------------------------------------
    async def _report(
        self,
        frames: _Frames,
        key: tuple[object, ...],
        hours: pd.DatetimeIndex,
        predicted: QuantilePredictions,
    ) -> BacktestReport:
        """The backtest report of ``predicted`` over ``hours``, cached per data and key."""
        full_key = (frames.key, *key)
        report = self.reports.get(full_key)
        if report is None:
            report = await asyncio.to_thread(
                backtest_report,
                frames.closes,
                hours,
                predicted.values,
                list(predicted.quantiles),
                baselines=frames.baselines,
            )
            self.reports.put(full_key, report)
        return report

    async def _part(
        self,
        frames: _Frames,
        alias: str,
        version: str,
        start: pd.Timestamp,
        end: pd.Timestamp,
        answered: QuantilePredictions | None = None,
    ) -> Part:
        """``answered``: the version's predictions over the range, already asked for."""
        key = (self.model_name, version, start, end)
        if answered is not None:
            self.cache.put(key, answered)
            predicted: QuantilePredictions | None = answered
        else:
            predicted = self.cache.get(key)
            record_result_cache(predicted is not None)
        if predicted is None:
            windows, hours = windows_for_range(frames.features, start, end, WINDOW, matrix=frames.matrix)
            predicted = await self.predictor.infer(windows, version=version)
            self.cache.put(key, predicted)
        else:
            hours = _hours(frames.features.index, start, end)
        report = await self._report(frames, key, hours, predicted)
        return Part(
            alias=alias,
            version=version,
            hours=hours,
            predictions=predicted.point,
            lower=predicted.lower,
            upper=predicted.upper,
            quantiles=predicted.values,
            metrics=report,
            quantile_levels=predicted.quantiles,
        )

    async def _forecast(self, frames: _Frames, parts: list[Part]) -> Forecast:
        if len(parts) == 1:
            overall = parts[0].metrics
            hours = parts[0].hours
        else:
            hours = parts[0].hours.append([p.hours for p in parts[1:]])
            overall = await self._report(
                frames,
                (self.model_name, "stitched", *((p.version, p.hours[0], p.hours[-1]) for p in parts)),
                hours,
                stitched_quantiles(parts),
            )
        return Forecast(
            start=hours[0],
            end=hours[-1],
            parts=parts,
            overall=overall,
            data_source=source_of(frames.bars) or "unknown",
            synthetic=is_synthetic(frames.bars),
        )

    async def prepare(
        self, raw_alias: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> tuple[str, str, pd.Timestamp, pd.Timestamp, _Frames]:
        """Validate a forecast request and pin its version: (alias, version, start, end, frames)."""
        alias = normalize_alias(raw_alias)
        frames = await self.frames()
        if start is None:
            start = _day_start(backtest_date(alias))
        if start is not None:  # fail on dates before asking MLflow anything
            check_range(frames.bars.index, start, end)
        version = await self.resolve(alias)
        if start is None:
            base = await self.base_date(version)
            start = _day_start(base) or _day_start(self.champion_start)
            assert start is not None
        last = check_range(frames.bars.index, start, end)
        return alias, version, start, last, frames

    async def first_sight(
        self, raw_alias: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> Forecast | None:
        """The forecast for an alias this process has never resolved, the predictor resolving it;
        None when that does not apply (the alias was seen, or its start needs its version's base
        date) or the predictor could not answer for it (the regular path then says why, as MLflow
        and the predictor say it, and a timed-out predictor is not asked twice).

        Nothing is cached under an alias never resolved (unless another alias shares its version,
        which only a resolution would tell), so the regular path would ask MLflow for its version,
        then the predictor for that version, and the predictor (not having it loaded) would ask
        MLflow where the version's files are: two MLflow round trips before the first forward.
        Asked for the alias, the predictor resolves it freshly (as fresh as a resolution here) and
        the answer names the version, which is remembered like a resolution made here (the alias
        cache, and the version served while MLflow is down) and under which the result is cached.
        """
        alias = normalize_alias(raw_alias)
        if alias in self._last_resolved:
            return None
        start = start if start is not None else _day_start(backtest_date(alias))
        if start is None:
            return None
        frames = await self.frames()
        last = check_range(frames.bars.index, start, end)
        windows, _ = windows_for_range(frames.features, start, last, WINDOW, matrix=frames.matrix)
        asked_at = self.alias_cache.now()
        try:
            predicted, version = await self.predictor.infer_alias(windows, alias)
        except PredictorNotFound:
            return None
        except PredictorUnavailable as e:
            if e.timed_out:
                raise
            return None
        record_alias_cache(False)
        self._remember(alias, version, asked_at)
        key = (frames.key, self.model_name, alias, version, start, last)
        forecast = self.forecasts.get(key)
        if forecast is None:
            part = await self._part(frames, alias, version, start, last, answered=predicted)
            forecast = await self._forecast(frames, [part])
            self.forecasts.put(key, forecast)
        return forecast

    async def predict(
        self, raw_alias: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> Forecast:
        """Every hour from the start (the alias's date unless given) to ``end`` (the data's end)."""
        first = await self.first_sight(raw_alias, start, end)
        if first is not None:
            return first
        alias, version, start, last, frames = await self.prepare(raw_alias, start, end)
        key = (frames.key, self.model_name, alias, version, start, last)
        forecast = self.forecasts.get(key)
        record_result_cache(forecast is not None, cache="forecast")
        if forecast is None:
            part = await self._part(frames, alias, version, start, last)
            forecast = await self._forecast(frames, [part])
            self.forecasts.put(key, forecast)
        return forecast

    async def plan(self) -> list[Segment]:
        frames = await self.frames()
        return stitch_plan(await self._aliases_for_forecast(), self.champion_start, frames.bars.index[-1])

    async def champion(self) -> Forecast:
        """The stitched backtest: one batched request per alias, ``CHAMPION_CONCURRENCY`` at a time."""
        frames = await self.frames()
        segments = stitch_plan(await self._aliases_for_forecast(), self.champion_start, frames.bars.index[-1])
        if not segments:
            raise NotFound(f"no backtest aliases dated on or after the champion start {self.champion_start}")
        key = (frames.key, self.model_name, "champion", *segments)
        forecast = self.forecasts.get(key)
        record_result_cache(forecast is not None, cache="forecast")
        if forecast is None:
            slots = asyncio.Semaphore(CHAMPION_CONCURRENCY)

            async def part(s: Segment) -> Part:
                async with slots:
                    return await self._part(frames, s.alias, s.version, s.start, s.end)

            parts = await asyncio.gather(*(part(s) for s in segments))
            forecast = await self._forecast(frames, list(parts))
            self.forecasts.put(key, forecast)
        return forecast


def stitched_quantiles(parts: list[Part]) -> QuantilePredictions:
    """The parts' predictions end to end: every quantile when all parts share them, else the medians."""
    levels = parts[0].quantile_levels
    if all(p.quantile_levels == levels for p in parts):
        return QuantilePredictions(np.concatenate([p.quantiles for p in parts]), levels)
    points = np.concatenate([p.predictions for p in parts])
    return QuantilePredictions(points.reshape(-1, 1), (POINT_QUANTILE,))


def _data_key(bars: pd.DataFrame) -> tuple[object, ...]:
    return (len(bars), bars.index[0], bars.index[-1], float(bars["close"].iloc[-1]), source_of(bars))


def _derive(key: tuple[object, ...], bars: pd.DataFrame) -> _Frames:
    closes = bars["close"]
    features = compute_features(bars)
    return _Frames(
        key=key,
        bars=bars,
        features=features,
        matrix=feature_matrix(features),
        closes=closes,
        baselines=Baselines(closes),
    )


def _hours(index: pd.DatetimeIndex, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """The hours of ``index`` in [start, end]: those :func:`windows_for_range` predicts."""
    return index[index.searchsorted(start) : index.searchsorted(end, side="right")]


def _day_start(day: date | None) -> pd.Timestamp | None:
    return None if day is None else pd.Timestamp(day, tz="UTC")
