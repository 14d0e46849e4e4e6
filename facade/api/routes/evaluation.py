"""GET /evaluation: two versions backtested on the same recent hours, for the operator's quality gate.

Read-only. 404 names an unknown version or model, 409 says there are too few hours after both base dates
(or fewer than min_hours asked for), 422 a malformed parameter, 503 a dependency down.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from btcforecast.problems import problem_responses
from facade.api.deps import ForecasterDep
from facade.evaluation import MAX_HOURS, Evaluation, evaluate

router = APIRouter(tags=["evaluation"])

ERRORS = problem_responses(422, 502, 503) | {
    404: {"description": "an unknown version, or a model this facade does not serve"},
    409: {"description": "too few hours after both base dates, or min_hours over hours"},
}


@router.get("/evaluation", response_model=Evaluation, responses=ERRORS)
async def get_evaluation(
    forecaster: ForecasterDep,
    candidate: Annotated[str, Query(min_length=1, description="the version to judge")],
    incumbent: Annotated[str, Query(min_length=1, description="the version it would replace")],
    hours: Annotated[int, Query(ge=1, le=MAX_HOURS, description="most recent unseen hours")] = 168,
    min_hours: Annotated[int, Query(ge=1, le=MAX_HOURS, description="fewer: 409")] = 24,
    model: Annotated[str | None, Query(description="registered model (must be the facade's)")] = None,
) -> Evaluation:
    return await evaluate(
        forecaster, candidate=candidate, incumbent=incumbent, hours=hours, min_hours=min_hours, model=model
    )
