"""The Forecaster as a plain object: forecasts for an alias, the stitched champion, the caching and
MLflow outages; and how parts stitch (the overall report sees every quantile only when all parts have it)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException, RestException

from btcforecast.errors import InputError, NotFound, Unavailable
from btcforecast.evaluation import backtest_report
from btcforecast.features import FEATURES
from btcforecast.market import LocalParquetStore, generate_bars
from facade.forecasts import Forecaster, Part, stitched_quantiles
from facade.predictor_client import PredictorNotFound, PredictorUnavailable, QuantilePredictions
from facade.time_range import OutOfData

HOURS = pd.date_range("2025-01-03", periods=6, freq="h", tz="UTC")
CLOSES = pd.Series(
    np.linspace(100.0, 130.0, 60), index=pd.date_range("2025-01-01", periods=60, freq="h", tz="UTC")
)


def part(hours: pd.DatetimeIndex, quantiles: np.ndarray, levels: tuple[float, ...]) -> Part:
    point = quantiles[:, levels.index(0.5)]
    interval = len(levels) > 1
    return Part(
        alias="backtest_20250101",
        version="1",
        hours=hours,
        predictions=point,
        lower=quantiles[:, 0] if interval else None,
        upper=quantiles[:, -1] if interval else None,
        quantiles=quantiles,
        metrics=backtest_report(CLOSES, hours, quantiles, levels),
        quantile_levels=levels,
    )


def band(n: int, offset: float) -> np.ndarray:
    median = np.full(n, 110.0) + offset
    return np.column_stack([median - 5.0, median, median + 5.0])


def test_parts_with_the_same_quantiles_stitch_every_column() -> None:
    first = part(HOURS[:3], band(3, 0.0), (0.1, 0.5, 0.9))
    second = part(HOURS[3:], band(3, 1.0), (0.1, 0.5, 0.9))
    stitched = stitched_quantiles([first, second])
    assert stitched.quantiles == (0.1, 0.5, 0.9)
    assert stitched.values.tolist() == np.concatenate([band(3, 0.0), band(3, 1.0)]).tolist()


def test_parts_with_different_quantiles_stitch_their_medians_alone() -> None:
    first = part(HOURS[:3], band(3, 0.0), (0.1, 0.5, 0.9))
    second = part(HOURS[3:], band(3, 1.0)[:, 1:2], (0.5,))
    stitched = stitched_quantiles([first, second])
    assert stitched.quantiles == (0.5,)
    assert stitched.values[:, 0].tolist() == [110.0] * 3 + [111.0] * 3
    assert stitched.lower is None


# --- the Forecaster with a real local store and plain stand-ins for MLflow and the predictor ---------
ALIASES = {"production": "2", "backtest_20250327": "1", "backtest_20250403": "2"}
BASE_DATES = {"1": "2025-03-27", "2": "2025-04-03"}


class FakeRegistry:
    """The MlflowClient calls the registry module makes; ``down`` makes each raise as MLflow unreachable."""

    def __init__(self) -> None:
        self.down = False
        self.calls: list[str] = []

    def _call(self, what: str) -> None:
        self.calls.append(what)
        if self.down:
            raise MlflowException("connection refused")

    def get_registered_model(self, name: str) -> SimpleNamespace:
        self._call("get_registered_model")
        return SimpleNamespace(aliases=dict(ALIASES))

    def get_model_version_by_alias(self, name: str, alias: str) -> SimpleNamespace:
        self._call("get_model_version_by_alias")
        if alias not in ALIASES:
            raise RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"no alias {alias}"})
        return self.get_model_version(name, ALIASES[alias])

    def get_model_version(self, name: str, version: str) -> SimpleNamespace:
        self._call("get_model_version")
        return SimpleNamespace(
            name=name, version=version, run_id=None, source="", tags={"base_date": BASE_DATES[version]}
        )


class FakePredictor:
    """Predicts each window's last close, with a band of +-10; records the versions that answered and
    the aliases it was asked to resolve (in its own MLflow: ``ALIASES``). ``alias_failure`` is what it
    raises when asked for an alias instead (None = it answers)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str | None, int]] = []
        self.aliases_asked: list[str] = []
        self.alias_failure: Exception | None = None

    async def infer(self, windows: np.ndarray, version: str | None = None) -> QuantilePredictions:
        self.asked.append((version, len(windows)))
        last = windows[:, -1, FEATURES.index("close")].astype(np.float32)
        return QuantilePredictions(np.column_stack([last - 10, last, last + 10]), (0.1, 0.5, 0.9))

    async def infer_alias(self, windows: np.ndarray, alias: str) -> tuple[QuantilePredictions, str]:
        self.aliases_asked.append(alias)
        if self.alias_failure is not None:
            raise self.alias_failure
        if alias not in ALIASES:
            raise PredictorNotFound(f"the predictor's MLflow has no alias {alias!r}")
        return await self.infer(windows, ALIASES[alias]), ALIASES[alias]


@pytest.fixture
def mlflow() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def predictor() -> FakePredictor:
    return FakePredictor()


@pytest.fixture
def make_forecaster(
    tmp_path: Path, mlflow: FakeRegistry, predictor: FakePredictor
) -> Callable[..., Forecaster]:
    """Factory: a Forecaster on bars from 2025-03-01 to 2025-04-10; keywords (cache sizes) go to it."""

    def make(**options: Any) -> Forecaster:
        store = LocalParquetStore(tmp_path / "bars.parquet")
        store.write(generate_bars("2025-03-01", "2025-04-10 23:00"))
        return Forecaster(
            store=store,
            mlflow=mlflow,
            predictor=predictor,
            model_name="btc-lstm",
            champion_start=date(2025, 3, 27),
            **options,
        )

    return make


@pytest.fixture
def forecaster(make_forecaster: Callable[..., Forecaster]) -> Forecaster:
    return make_forecaster()


async def test_a_backtest_alias_predicts_from_its_date_to_the_end_of_the_data(
    forecaster: Forecaster, predictor: FakePredictor
) -> None:
    forecast = await forecaster.predict("20250327")
    assert (forecast.start, forecast.end) == (ts("2025-03-27 00:00"), ts("2025-04-10 23:00"))
    assert [(p.alias, p.version) for p in forecast.parts] == [("backtest_20250327", "1")]
    assert predictor.asked == [("1", forecast.n)]


async def test_the_first_request_for_an_alias_lets_the_predictor_resolve_it(
    forecaster: Forecaster, mlflow: FakeRegistry, predictor: FakePredictor
) -> None:
    forecast = await forecaster.predict("20250327")
    assert predictor.aliases_asked == ["backtest_20250327"] and mlflow.calls == []
    assert forecast.parts[0].version == "1"


async def test_an_alias_answered_once_is_resolved_here_afterwards(
    forecaster: Forecaster, mlflow: FakeRegistry, predictor: FakePredictor
) -> None:
    await forecaster.predict("20250327")
    await forecaster.predict("20250327", ts("2025-04-01 00:00"))
    assert predictor.aliases_asked == ["backtest_20250327"]
    assert mlflow.calls == ["get_model_version_by_alias", "get_model_version"]
    assert [v for v, _ in predictor.asked] == ["1", "1"]


async def test_an_alias_first_answered_by_the_predictor_keeps_its_version_while_mlflow_is_down(
    forecaster: Forecaster, mlflow: FakeRegistry
) -> None:
    await forecaster.predict("20250327")
    mlflow.down = True
    later = await forecaster.predict("20250327", ts("2025-04-01 00:00"))
    assert later.parts[0].version == "1"


async def test_an_alias_the_predictor_cannot_find_is_not_found_as_mlflow_says(
    forecaster: Forecaster, predictor: FakePredictor
) -> None:
    with pytest.raises(NotFound, match="no alias 'backtest_20250405'"):
        await forecaster.predict("20250405")
    assert predictor.aliases_asked == ["backtest_20250405"]


async def test_a_predictor_failing_for_an_alias_is_asked_for_the_version_resolved_here(
    forecaster: Forecaster, predictor: FakePredictor
) -> None:
    predictor.alias_failure = PredictorUnavailable("predictor failed (503): MLflow is unreachable")
    forecast = await forecaster.predict("20250327")
    assert forecast.parts[0].version == "1" and [v for v, _ in predictor.asked] == ["1"]


async def test_a_predictor_that_timed_out_for_an_alias_is_not_asked_again(
    forecaster: Forecaster, predictor: FakePredictor
) -> None:
    failure = PredictorUnavailable("predictor at http://127.0.0.1:1 is unreachable: ReadTimeout")
    failure.__cause__ = httpx.ReadTimeout("timed out")
    predictor.alias_failure = failure
    with pytest.raises(PredictorUnavailable, match="ReadTimeout"):
        await forecaster.predict("20250327")
    assert predictor.asked == []


async def test_a_named_alias_starts_at_its_versions_base_date(forecaster: Forecaster) -> None:
    forecast = await forecaster.predict("production")
    assert forecast.start == ts("2025-04-03 00:00") and forecast.parts[0].version == "2"


async def test_the_same_request_twice_asks_the_predictor_once(
    forecaster: Forecaster, predictor: FakePredictor
) -> None:
    first = await forecaster.predict("production", ts("2025-04-05 00:00"), ts("2025-04-06 23:00"))
    second = await forecaster.predict("production", ts("2025-04-05 00:00"), ts("2025-04-06 23:00"))
    assert len(predictor.asked) == 1 and first.n == second.n == 48


async def test_a_range_outside_the_data_is_refused_before_mlflow_is_asked(
    forecaster: Forecaster, mlflow: FakeRegistry
) -> None:
    with pytest.raises(OutOfData, match="outside the data"):
        await forecaster.predict("production", ts("2025-05-01 00:00"))
    assert mlflow.calls == []


async def test_an_unknown_alias_is_not_found(forecaster: Forecaster) -> None:
    with pytest.raises(NotFound, match="no alias 'staging'"):
        await forecaster.predict("staging")


async def test_an_alias_resolved_before_mlflow_went_down_keeps_its_version(
    forecaster: Forecaster, mlflow: FakeRegistry
) -> None:
    await forecaster.resolve("production")
    mlflow.down = True
    assert await forecaster.resolve("production") == "2"


async def test_an_alias_never_resolved_while_mlflow_is_down_is_unavailable(
    forecaster: Forecaster, mlflow: FakeRegistry
) -> None:
    mlflow.down = True
    with pytest.raises(Unavailable, match="MLflow is unreachable"):
        await forecaster.resolve("production")


async def test_the_champion_stitches_one_part_per_backtest_alias(forecaster: Forecaster) -> None:
    forecast = await forecaster.champion()
    assert [(p.alias, p.hours[0], p.hours[-1]) for p in forecast.parts] == [
        ("backtest_20250327", ts("2025-03-27 00:00"), ts("2025-04-02 23:00")),
        ("backtest_20250403", ts("2025-04-03 00:00"), ts("2025-04-10 23:00")),
    ]
    assert forecast.overall.interval is not None


async def test_a_champion_without_backtest_aliases_is_not_found(forecaster: Forecaster) -> None:
    forecaster.champion_start = date(2025, 4, 4)
    with pytest.raises(NotFound, match="no backtest aliases dated on or after"):
        await forecaster.champion()


async def test_bars_outside_the_data_or_reversed_are_refused(forecaster: Forecaster) -> None:
    with pytest.raises(InputError, match="is after end"):
        await forecaster.bars(ts("2025-04-02 00:00"), ts("2025-04-01 00:00"))
    with pytest.raises(OutOfData, match="is outside the data"):
        await forecaster.bars(ts("2025-06-01 00:00"), ts("2025-06-02 00:00"))


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


# --- whole forecasts are cached per (data, alias, version, range) ------------------------------------


async def test_a_repeated_request_is_answered_with_the_same_forecast(
    forecaster: Forecaster, predictor: FakePredictor
) -> None:
    first = await forecaster.predict("20250327")
    assert await forecaster.predict("backtest_20250327") is first
    assert len(predictor.asked) == 1


async def test_a_moved_alias_is_a_new_forecast(
    forecaster: Forecaster, predictor: FakePredictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = (ts("2025-04-05 00:00"), ts("2025-04-06 23:00"))
    before = await forecaster.predict("production", *window)
    monkeypatch.setitem(ALIASES, "production", "1")
    after = await forecaster.predict("production", *window)
    assert (before.parts[0].version, after.parts[0].version) == ("2", "1")
    assert [v for v, _ in predictor.asked] == ["2", "1"]


async def test_new_market_data_is_a_new_forecast(forecaster: Forecaster) -> None:
    first = await forecaster.predict("20250327", ts("2025-03-27 00:00"), ts("2025-03-28 23:00"))
    forecaster.store.write(generate_bars("2025-03-01", "2025-04-10 23:00", seed=7))
    second = await forecaster.predict("20250327", ts("2025-03-27 00:00"), ts("2025-03-28 23:00"))
    assert second is not first
    assert second.overall != first.overall


async def test_the_champion_is_cached_like_a_forecast(
    forecaster: Forecaster, predictor: FakePredictor
) -> None:
    first = await forecaster.champion()
    assert await forecaster.champion() is first
    assert len(predictor.asked) == 2


async def test_a_forecast_rebuilt_from_cached_predictions_equals_the_first(
    make_forecaster: Callable[..., Forecaster], predictor: FakePredictor
) -> None:
    forecaster = make_forecaster(forecast_cache_size=0)
    first = await forecaster.predict("20250327")
    second = await forecaster.predict("20250327")
    assert second is not first and len(predictor.asked) == 1
    assert second.parts[0].hours.equals(first.parts[0].hours)
    assert second.overall == first.overall


async def test_without_a_result_cache_every_request_asks_the_predictor(
    make_forecaster: Callable[..., Forecaster], predictor: FakePredictor
) -> None:
    forecaster = make_forecaster(cache_size=0)
    await forecaster.predict("20250327")
    await forecaster.predict("20250327")
    assert len(predictor.asked) == 2
