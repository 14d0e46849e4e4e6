"""POST /reload: make an alias live (local: the predictor reloads; cluster: the ModelAlias moves)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from btcforecast.alias_names import normalize_alias
from facade.api.deps import ReloaderDep, SettingsDep, TokenDep
from facade.schemas import ErrorResponse, ReloadResponse

router = APIRouter(tags=["models"])


@router.post(
    "/reload",
    dependencies=[TokenDep],
    responses={
        code: {"model": ErrorResponse} for code in (401, 404, 409, 502, 503, 504)
    },  # cluster mode: 409 another alias is being rolled out; 502 the operator reports a failed
    # rollout; 504 no answer in time
)
async def post_reload(
    reloader: ReloaderDep,
    settings: SettingsDep,
    alias: Annotated[str | None, Query(description="backtest_20250327, 20250327 or a named alias")] = None,
) -> ReloadResponse:
    target = normalize_alias(alias if alias is not None else settings.model_alias)
    result = await reloader.reload(target)
    return ReloadResponse(model_alias=result.model_alias, model_version=result.model_version)
