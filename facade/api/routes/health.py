"""GET /health: always 200; a dependency down shows as ``status: degraded`` and a field saying which."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from btcforecast.errors import DependencyUnavailable
from btcforecast.market import MarketDataNotFound
from facade.api.deps import ForecasterDep, PredictorDep
from facade.predictor_client import PredictorNotFound, PredictorRejected
from facade.schemas import HealthResponse

router = APIRouter(tags=["health"])
CHECK_TIMEOUT = 5.0


@router.get("/health")
async def get_health(forecaster: ForecasterDep, predictor: PredictorDep) -> HealthResponse:
    health = HealthResponse(status="ok", model_loaded=False)
    problems: list[str] = []

    async def check_predictor() -> None:
        try:
            serving = await asyncio.wait_for(predictor.serving(), CHECK_TIMEOUT)
        except (DependencyUnavailable, PredictorNotFound, PredictorRejected, TimeoutError) as e:
            health.predictor = "unavailable"
            problems.append(f"predictor: {e or 'timed out'}")
            return
        health.model_loaded = bool(serving.get("ready")) and serving.get("model_version") is not None
        health.model_alias = serving.get("model_alias")
        version = serving.get("model_version")
        health.model_version = str(version) if version is not None else None
        health.model_synthetic = serving.get("synthetic")
        if not health.model_loaded:
            health.predictor = "not ready"
            problems.append(f"predictor: no model loaded ({serving.get('load_error') or 'loading'})")

    async def check_mlflow() -> None:
        try:
            await asyncio.wait_for(forecaster.aliases(), CHECK_TIMEOUT)
        except (DependencyUnavailable, TimeoutError) as e:
            health.mlflow = "unavailable"
            problems.append(f"mlflow: {e or 'timed out'}")

    async def check_market() -> None:
        try:
            frames = await asyncio.wait_for(forecaster.frames(), CHECK_TIMEOUT)
        except MarketDataNotFound as e:
            health.market_data = "missing"
            problems.append(f"market data: {e}")
            return
        except (DependencyUnavailable, TimeoutError) as e:
            health.market_data = "unavailable"
            problems.append(f"market data: {e or 'timed out'}")
            return
        bars = frames.bars
        health.data_source = bars.attrs.get("source")
        health.data_synthetic = health.data_source == "synthetic"
        health.data_start = bars.index[0].strftime("%Y-%m-%dT%H:%M:%S")
        health.data_end = bars.index[-1].strftime("%Y-%m-%dT%H:%M:%S")

    await asyncio.gather(check_predictor(), check_mlflow(), check_market())
    health.synthetic = bool(health.data_synthetic or health.model_synthetic)
    health.problems = problems
    health.status = "degraded" if problems else "ok"
    return health
