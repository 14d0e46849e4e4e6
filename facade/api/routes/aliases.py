"""GET /aliases: the registry's aliases, named ones first, then backtests by date."""

from __future__ import annotations

from fastapi import APIRouter

from btcforecast.alias_names import sort_aliases
from facade.api.deps import ForecasterDep
from facade.schemas import AliasesResponse, ErrorResponse

router = APIRouter(tags=["models"])


@router.get("/aliases", responses={503: {"model": ErrorResponse}})
async def get_aliases(forecaster: ForecasterDep) -> AliasesResponse:
    versions = await forecaster.aliases()
    return AliasesResponse(aliases=sort_aliases(list(versions)), versions=versions)
