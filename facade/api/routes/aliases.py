"""GET /aliases: the registry's aliases, named ones first, then backtests by date."""

from __future__ import annotations

from fastapi import APIRouter

from btcforecast.alias_names import sort_aliases
from btcforecast.problems import problem_responses
from facade.api.deps import ForecasterDep
from facade.schemas import AliasesResponse

router = APIRouter(tags=["models"])


@router.get("/aliases", responses=problem_responses(503))
async def get_aliases(forecaster: ForecasterDep) -> AliasesResponse:
    versions = await forecaster.aliases()
    return AliasesResponse(aliases=sort_aliases(list(versions)), versions=versions)
