"""GET /health: always 200; a dependency down shows as ``status: degraded`` and a field saying which."""

from __future__ import annotations

from fastapi import APIRouter

from facade.api.deps import ForecasterDep, PredictorDep
from facade.health import check_health
from facade.schemas import HealthResponse

router = APIRouter(tags=["health"])


@router.get("/health")
async def get_health(forecaster: ForecasterDep, predictor: PredictorDep) -> HealthResponse:
    return await check_health(forecaster, predictor)
