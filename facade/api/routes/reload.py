"""POST /reload: make an alias live (local: the predictor reloads; cluster: the ModelAlias moves)."""

from __future__ import annotations

from fastapi import APIRouter

from btcforecast.alias_names import normalize_alias
from btcforecast.problems import problem_responses
from facade.api.deps import ReloaderDep, SettingsDep, TokenDep
from facade.api.params import AliasQuery
from facade.schemas import ReloadResponse

router = APIRouter(tags=["models"])


@router.post(
    "/reload",
    dependencies=[TokenDep],
    responses=problem_responses(401, 404, 422, 502, 503, 504)
    | {409: {"description": "cluster mode: another alias is being rolled out"}},
    # cluster mode: 502 the operator reports a failed rollout; 504 no answer in time
)
async def post_reload(
    reloader: ReloaderDep,
    settings: SettingsDep,
    alias: AliasQuery = None,
) -> ReloadResponse:
    target = normalize_alias(alias if alias is not None else settings.model_alias)
    result = await reloader.reload(target)
    return ReloadResponse(model_alias=result.model_alias, model_version=result.model_version)
