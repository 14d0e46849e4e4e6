"""facade.alias_cache.AliasCache and the Forecaster's use of it: bounded, invalidated by a webhook."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from btcforecast import registry
from facade.alias_cache import AliasCache
from facade.forecasts import Forecaster
from tests.fixtures.registry import RegisteredModel


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_is_served_until_its_bound_counted_from_when_mlflow_was_asked() -> None:
    clock = Clock()
    cache: AliasCache[str] = AliasCache(ttl=5, clock=clock)
    asked_at = cache.now()
    clock.now += 2  # the MLflow call took 2 s
    cache.put("production", "7", asked_at)

    clock.now = asked_at + 4.9
    assert cache.get("production") == "7"
    clock.now = asked_at + 5
    assert cache.get("production") is None


def test_an_invalidated_alias_and_the_listing_are_asked_again() -> None:
    cache: AliasCache[str] = AliasCache(ttl=60, clock=Clock())
    cache.put("production", "7", cache.now())
    cache.put("staging", "6", cache.now())
    cache.put_listing({"production": "7", "staging": "6"}, cache.now())

    cache.invalidate("production")

    assert (cache.get("production"), cache.get("staging"), cache.get_listing()) == (None, "6", None)


def test_a_zero_bound_caches_nothing() -> None:
    cache: AliasCache[str] = AliasCache(ttl=0, clock=Clock())
    cache.put("production", "7", cache.now())
    cache.put_listing({"production": "7"}, cache.now())
    assert (cache.get("production"), cache.get_listing()) == (None, None)


def forecaster(model: RegisteredModel, seconds: float) -> Forecaster:
    return Forecaster(
        store=None,  # type: ignore[arg-type]  # alias resolution reads no market data
        mlflow=registry.connect(model.tracking_uri),
        predictor=None,  # type: ignore[arg-type]
        model_name=model.name,
        champion_start=date(2025, 3, 27),
        alias_cache_seconds=seconds,
    )


async def test_a_moved_alias_is_served_from_the_cache_until_the_webhook_invalidates_it(
    register_models: Callable[..., RegisteredModel],
) -> None:
    model = register_models()
    f = forecaster(model, seconds=3600)
    first = await f.resolve("staging")
    moved = model.version_of("backtest_20250403")
    registry.set_alias(registry.connect(model.tracking_uri), model.name, "staging", moved)

    assert await f.resolve("staging") == first  # within the bound: no MLflow round trip
    assert f.alias_moved(model.name, "staging")
    assert await f.resolve("staging") == moved


async def test_an_event_for_another_registered_model_invalidates_nothing(
    register_models: Callable[..., RegisteredModel],
) -> None:
    model = register_models()
    f = forecaster(model, seconds=3600)
    first = await f.resolve("staging")
    registry.set_alias(
        registry.connect(model.tracking_uri), model.name, "staging", model.version_of("backtest_20250403")
    )

    assert not f.alias_moved("some-other-model", "staging")
    assert await f.resolve("staging") == first


async def test_while_mlflow_is_down_the_last_resolution_is_still_served_after_the_bound(
    registered: RegisteredModel,
) -> None:
    clock = Clock()
    f = forecaster(registered, seconds=5)
    f.alias_cache.clock = clock
    known = await f.resolve("production")
    f.mlflow = registry.connect("http://127.0.0.1:9")  # MLflow gone
    clock.now += 60

    assert await f.resolve("production") == known
