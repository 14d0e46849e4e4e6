"""The facade's health as a plain function: each dependency checked concurrently, bounded in time.

Health is always an answer, never an error: a dependency down shows as ``status: degraded``, a
field saying which, and a line in ``problems`` saying why.
"""

from __future__ import annotations

import asyncio

from btcforecast.errors import ProjectError
from btcforecast.market import MarketDataNotFound
from facade.forecasts import Forecaster
from facade.predictor_client import PredictorClient
from facade.schemas import HealthResponse
from facade.time_range import OutOfData

CHECK_TIMEOUT = 5.0


async def check_health(
    forecaster: Forecaster, predictor: PredictorClient, timeout: float = CHECK_TIMEOUT
) -> HealthResponse:
    """The predictor, the registry and the market data, each within ``timeout`` seconds."""
    health = HealthResponse(status="ok", model_loaded=False)
    found = await asyncio.gather(
        check_predictor(health, predictor, timeout),
        check_registry(health, forecaster, timeout),
        check_market_data(health, forecaster, timeout),
    )
    health.problems = [problem for problem in found if problem is not None]
    health.synthetic = bool(health.data_synthetic or health.model_synthetic)
    health.status = "degraded" if health.problems else "ok"
    return health


async def check_predictor(health: HealthResponse, predictor: PredictorClient, timeout: float) -> str | None:
    """Fill in what the predictor serves; the problem, if any."""
    try:
        serving = await asyncio.wait_for(predictor.serving(), timeout)
    except (ProjectError, TimeoutError) as e:
        health.predictor = "unavailable"
        return f"predictor: {e or 'timed out'}"
    version = serving.get("model_version")
    health.model_loaded = bool(serving.get("ready")) and version is not None
    health.model_alias = serving.get("model_alias")
    health.model_version = str(version) if version is not None else None
    health.model_synthetic = serving.get("synthetic")
    if not health.model_loaded:
        health.predictor = "not ready"
        return f"predictor: no model loaded ({serving.get('load_error') or 'loading'})"
    return None


async def check_registry(health: HealthResponse, forecaster: Forecaster, timeout: float) -> str | None:
    """Can MLflow list the aliases? The problem, if not."""
    try:
        await asyncio.wait_for(forecaster.aliases(fresh=True), timeout)
    except (ProjectError, TimeoutError) as e:
        health.mlflow = "unavailable"
        return f"mlflow: {e or 'timed out'}"
    return None


async def check_market_data(health: HealthResponse, forecaster: Forecaster, timeout: float) -> str | None:
    """Fill in the data's source and span; ``missing`` when nothing (or an empty set) is stored."""
    try:
        frames = await asyncio.wait_for(forecaster.frames(), timeout)
    except (MarketDataNotFound, OutOfData) as e:
        health.market_data = "missing"
        return f"market data: {e}"
    except (ProjectError, TimeoutError) as e:
        health.market_data = "unavailable"
        return f"market data: {e or 'timed out'}"
    bars = frames.bars
    health.data_source = bars.attrs.get("source")
    health.data_synthetic = health.data_source == "synthetic"
    health.data_start = bars.index[0].strftime("%Y-%m-%dT%H:%M:%S")
    health.data_end = bars.index[-1].strftime("%Y-%m-%dT%H:%M:%S")
    return None
