"""GET /predict-champion: the stitched weekly backtest from the champion start to the data's end.

Each backtest alias dated on or after CHAMPION_START predicts from its date to the hour before the
next alias's date; the last one to the end of the data. POST takes a JSON ``callback_url`` too.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request
from fastapi.responses import Response

from btcforecast.errors import NotFound
from facade.api.deps import AllowlistDep, ForecasterDep, JobsDep, WorkerDep
from facade.api.format import forecast_response
from facade.api.params import CallbackQuery
from facade.api.routes.predict import ERRORS
from facade.api.submit import accept, check_url
from facade.schemas import ChampionRequest, PredictResponse

router = APIRouter(tags=["predictions"])


async def _champion(
    request: Request,
    forecaster: ForecasterDep,
    jobs: JobsDep,
    worker: WorkerDep,
    allowlist: AllowlistDep,
    callback_url: str | None,
) -> Response:
    if callback_url is not None:
        await check_url(callback_url, allowlist)
        if not await forecaster.plan():
            raise NotFound(
                f"no backtest aliases dated on or after the champion start {forecaster.champion_start}"
            )
        return await accept(request, jobs, worker, "predict-champion", {}, callback_url)
    return forecast_response(await forecaster.champion(), stitched=True)


@router.get("/predict-champion", response_model=PredictResponse, responses=ERRORS)
async def get_predict_champion(
    request: Request,
    forecaster: ForecasterDep,
    jobs: JobsDep,
    worker: WorkerDep,
    allowlist: AllowlistDep,
    callback_url: CallbackQuery = None,
) -> Response:
    return await _champion(request, forecaster, jobs, worker, allowlist, callback_url)


@router.post("/predict-champion", response_model=PredictResponse, responses=ERRORS)
async def post_predict_champion(
    request: Request,
    forecaster: ForecasterDep,
    jobs: JobsDep,
    worker: WorkerDep,
    allowlist: AllowlistDep,
    callback_url: CallbackQuery = None,
    body: Annotated[ChampionRequest | None, Body()] = None,
) -> Response:
    url = body.callback_url if body is not None and body.callback_url is not None else callback_url
    return await _champion(request, forecaster, jobs, worker, allowlist, url)
