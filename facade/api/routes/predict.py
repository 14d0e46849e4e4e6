"""POST /predict: one alias's model over every hour from its date (or ``start``) to the data's end.

Without an alias (query or body) the facade's MODEL_ALIAS. Defaults: ``start`` the alias's date,
``end`` the end of the data; ``start_date``/``end_date`` are the seed's names for them. With a
``callback_url`` the answer is 202 and a job id; the result is POSTed there, signed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request
from fastapi.responses import Response

from btcforecast.problems import problem_responses
from facade.api.deps import AllowlistDep, ForecasterDep, JobsDep, SettingsDep, WorkerDep
from facade.api.format import forecast_response
from facade.api.params import AliasQuery, CallbackQuery, EndQuery, StartQuery
from facade.api.submit import accept, check_url
from facade.schemas import JobAccepted, PredictRequest, PredictResponse
from facade.time_range import parse_time

router = APIRouter(tags=["predictions"])

ERRORS = problem_responses(404, 409, 413, 422, 502, 503) | {
    202: {"model": JobAccepted, "description": "accepted; the result goes to callback_url"},
    403: {"description": "the SSRF rules refuse callback_url (the detail names the rule)"},
}


@router.post("/predict", response_model=PredictResponse, responses=ERRORS)
async def post_predict(
    request: Request,
    forecaster: ForecasterDep,
    jobs: JobsDep,
    worker: WorkerDep,
    allowlist: AllowlistDep,
    settings: SettingsDep,
    alias: AliasQuery = None,
    start: StartQuery = None,
    end: EndQuery = None,
    start_date: StartQuery = None,
    end_date: EndQuery = None,
    callback_url: CallbackQuery = None,
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
        alias = settings.model_alias
    if callback_url is not None:
        await check_url(callback_url, allowlist)
    lo = parse_time("start", start) if start is not None else None
    hi = parse_time("end", end, end_of_day=True) if end is not None else None
    if callback_url is not None:
        await forecaster.prepare(alias, lo, hi)  # refuse now what would fail later: 404/422 before 202
        params = {"alias": alias, "start": start, "end": end}
        return await accept(request, jobs, worker, "predict", params, callback_url)
    return forecast_response(await forecaster.predict(alias, lo, hi), stitched=False)
