"""POST /predict: one alias's model over every hour from its date (or ``start``) to the data's end.

With a ``callback_url`` the answer is 202 and a job id; the result is POSTed there, signed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import Response

from btcforecast.errors import InputError
from facade.api.deps import AllowlistDep, ForecasterDep, JobsDep, WorkerDep
from facade.api.format import forecast_response
from facade.api.submit import accept, check_url
from facade.schemas import ErrorResponse, JobAccepted, PredictRequest, PredictResponse
from facade.time_range import parse_time

router = APIRouter(tags=["predictions"])

ERRORS = {
    202: {"model": JobAccepted, "description": "accepted; the result goes to callback_url"},
    404: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
    503: {"model": ErrorResponse},
}


@router.post("/predict", response_model=PredictResponse, responses=ERRORS)
async def post_predict(
    request: Request,
    forecaster: ForecasterDep,
    jobs: JobsDep,
    worker: WorkerDep,
    allowlist: AllowlistDep,
    alias: Annotated[str | None, Query(description="backtest_20250327, 20250327 or a named alias")] = None,
    start: Annotated[
        str | None, Query(description="first hour to predict (default: the alias's date)")
    ] = None,
    end: Annotated[
        str | None, Query(description="last hour to predict (default: the end of the data)")
    ] = None,
    start_date: Annotated[str | None, Query(description="the seed's name for start")] = None,
    end_date: Annotated[str | None, Query(description="the seed's name for end")] = None,
    callback_url: Annotated[str | None, Query(description="answer 202 and POST the result here")] = None,
    body: Annotated[PredictRequest | None, Body()] = None,
) -> Response:
    start = start if start is not None else start_date
    end = end if end is not None else end_date
    if body is not None:
        alias = body.alias if body.alias is not None else alias
        start = body.start if body.start is not None else start
        end = body.end if body.end is not None else end
        callback_url = body.callback_url if body.callback_url is not None else callback_url
    if alias is None:
        raise InputError("alias is required (query parameter or JSON body)")
    if callback_url is not None:
        await check_url(callback_url, allowlist)
    lo = parse_time("start", start) if start is not None else None
    hi = parse_time("end", end, end_of_day=True) if end is not None else None
    if callback_url is not None:
        await forecaster.prepare(alias, lo, hi)  # refuse now what would fail later: 404/422 before 202
        params = {"alias": alias, "start": start, "end": end}
        return await accept(request, jobs, worker, "predict", params, callback_url)
    return forecast_response(await forecaster.predict(alias, lo, hi), stitched=False)
