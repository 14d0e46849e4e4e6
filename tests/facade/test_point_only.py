"""A point-only version (format 1: the median alone) next to quantile versions.

Its predictions have ``lower`` and ``upper`` null and its report no interval figures; a stitched
backtest mixing it with a quantile version reports intervals per alias only. The predictor (KServe's
app) and the facade run in-process against the session's MLflow, under a model name of their own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path

import httpx
import pytest

from btcforecast import registry
from btcforecast.devservers.process import ManagedProcess
from btcforecast.model import ForecastLSTM
from btcforecast.training import TrainedModel
from facade.main import create_app
from facade.schemas import PredictResponse
from facade.settings import FacadeSettings
from tests.fixtures.registry import RegisteredModel
from tests.predictor.inprocess import serve_in_process

POINT_ONLY_DAY = date(2025, 4, 3)
QUANTILE_DAY = date(2025, 3, 27)
INTERVAL_FIELDS = ("interval", "naive_band", "pinball_ratio")


def point_only(trained: TrainedModel) -> TrainedModel:
    """``trained`` cut down to its median: a format-1 model (quantiles [0.5]) with the same network."""
    config = dataclasses.replace(trained.config, quantiles=[0.5], format_version=1)
    m = trained.config.point_index
    state = {k: v[m : m + 1] if k.startswith("head.") else v for k, v in trained.model.state_dict().items()}
    model = ForecastLSTM(config)
    model.load_state_dict(state, strict=True)
    model.eval()
    return TrainedModel(model=model, config=config, base_date=trained.base_date)


@pytest.fixture(scope="module")
def mixed(mlflow: ManagedProcess, trained_models: dict[date, TrainedModel]) -> RegisteredModel:
    """backtest_20250327: a quantile version; backtest_20250403 and production: point-only;
    staging: the quantile version the point-only one was cut from."""
    client = registry.connect(mlflow.url)
    name = "btc-lstm-point-only"
    result = RegisteredModel(tracking_uri=mlflow.url, name=name)
    quantile = registry.register(client, name, trained_models[QUANTILE_DAY], alias="backtest_20250327")
    point = registry.register(
        client, name, point_only(trained_models[POINT_ONLY_DAY]), alias="backtest_20250403"
    )
    uncut = registry.register(client, name, trained_models[POINT_ONLY_DAY], alias="staging")
    registry.set_alias(client, name, "production", point)
    result.aliases.update(
        backtest_20250327=quantile, backtest_20250403=point, production=point, staging=uncut
    )
    return result


@asynccontextmanager
async def stack(mixed: RegisteredModel, market_uri: str, state: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The facade in-process, its predictor calls answered by the predictor app in-process."""
    with pytest.MonkeyPatch.context() as patch:
        _, predictor_app = serve_in_process(mixed, state / "predictor", patch)
        outbound = httpx.AsyncClient(transport=httpx.ASGITransport(app=predictor_app))
        settings = FacadeSettings(
            state_dir=state / "facade",
            mlflow_tracking_uri=mixed.tracking_uri,
            model_name=mixed.name,
            market_data_uri=market_uri,
            predictor_url="http://predictor",
        )
        app = create_app(settings, http_client=outbound)
        try:
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://facade", timeout=120
                ) as client,
            ):
                yield client
        finally:
            await outbound.aclose()


async def test_a_point_only_version_answers_lower_and_upper_null_and_no_interval_figures(
    mixed: RegisteredModel, market_uri: str, tmp_path: Path
) -> None:
    async with stack(mixed, market_uri, tmp_path) as facade:
        response = await facade.post("/predict", params={"alias": "20250403", "end": "2025-04-10"})
    body = response.json()
    assert response.status_code == 200, body
    assert body["model_version"] == mixed.version_of("backtest_20250403")
    assert all(p["lower"] is None and p["upper"] is None for p in body["predictions"])
    assert all(isinstance(p["prediction"], float) for p in body["predictions"])
    for report in (body["metrics"]["overall"], *body["metrics"]["per_alias"]):
        assert all(report[field] is None for field in INTERVAL_FIELDS)
        assert report["significance"]["n"] == report["model"]["n"] == len(body["predictions"])
    PredictResponse.model_validate(body)


async def test_a_point_only_version_predicts_the_median_of_the_model_it_was_cut_from(
    mixed: RegisteredModel, market_uri: str, tmp_path: Path
) -> None:
    hours = {"start": "2025-04-03", "end": "2025-04-05"}
    async with stack(mixed, market_uri, tmp_path) as facade:
        cut = (await facade.post("/predict", params={"alias": "20250403", **hours})).json()
        uncut = (await facade.post("/predict", params={"alias": "staging", **hours})).json()
    assert [p["prediction"] for p in cut["predictions"]] == [p["prediction"] for p in uncut["predictions"]]
    assert all(p["lower"] < p["upper"] for p in uncut["predictions"])


async def test_a_stitched_backtest_mixing_point_only_and_quantile_versions_has_intervals_per_alias_only(
    mixed: RegisteredModel, market_uri: str, tmp_path: Path
) -> None:
    async with stack(mixed, market_uri, tmp_path) as facade:
        body = (await facade.get("/predict-champion")).json()
    quantile, point = body["metrics"]["per_alias"]
    assert (quantile["model_alias"], point["model_alias"]) == ("backtest_20250327", "backtest_20250403")
    assert quantile["interval"] is not None and quantile["pinball_ratio"] is not None
    assert all(point[field] is None for field in INTERVAL_FIELDS)
    overall = body["metrics"]["overall"]
    assert all(overall[field] is None for field in INTERVAL_FIELDS)
    assert overall["model"]["n"] == overall["significance"]["n"] == len(body["predictions"])
    by_alias = {p["model_alias"]: p for p in body["predictions"]}
    assert by_alias["backtest_20250327"]["lower"] is not None
    assert by_alias["backtest_20250403"]["lower"] is None
