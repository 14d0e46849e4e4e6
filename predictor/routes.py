"""Routes the predictor adds to KServe's REST app, ahead of KServe's own.

- ``POST /v2/models/{name}/infer`` and ``POST /v2/models/{name}/versions/{version}/infer``: v2
  inference decoded by our own decoder (JSON or the binary tensor extension; every malformed body a
  400 naming the problem), then through KServe's data plane and the model as usual. KServe's own
  versioned route answers 501; ours serves the version from the cache.
- ``POST /v2/models/{name}/reload?alias=&version=``: swap the live version (bearer ``RELOAD_TOKEN``).
- ``GET /v2/models/{name}`` and ``GET /v2/models/{name}/versions/{version}``: KServe's v2 model
  metadata plus ``parameters`` (window, features in order, quantiles, output names), which KServe
  0.21's own metadata cannot carry; its versioned route answers 501.
- ``GET /v2/models/{name}/serving``: what is live (alias, version, features, window, synthetic).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import orjson
from fastapi import APIRouter, FastAPI, Header, Query, Request, Response
from kserve.errors import ModelNotFound, ModelNotReady
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from kserve.protocol.rest.v2_datamodels import ModelReadyResponse
from pydantic import BaseModel, SecretStr

from btcforecast.alias_names import ALIAS_PATTERN
from btcforecast.bodylimit import BodySizeLimit
from btcforecast.http_edge import check_bearer
from predictor.model import ForecastModel
from predictor.validation import decode_v2


class ReloadResponse(BaseModel):
    status: str = "reloaded"
    model_name: str
    model_alias: str | None
    model_version: str
    previous_version: str | None
    was_cached: bool


class ServingResponse(BaseModel):
    model_name: str
    ready: bool
    model_alias: str | None = None
    model_version: str | None = None
    feature_names: list[str] = []
    window: int | None = None
    quantiles: list[float] = []
    output_names: list[str] = []
    synthetic: bool | None = None
    data_source: dict = {}
    cached_versions: list[str] = []
    load_error: str | None = None


def token_checker(token: SecretStr | None, what: str) -> Callable[[str | None], None]:
    """A check of ``Authorization: Bearer <RELOAD_TOKEN>``; open when no token is configured."""
    refusal = f"{what} needs the header Authorization: Bearer <RELOAD_TOKEN>"
    return lambda authorization: check_bearer(token, authorization, refusal)


def build_router(model: ForecastModel, dataplane: DataPlane) -> APIRouter:
    router = APIRouter(prefix="/v2/models/{model_name}")
    check_token = token_checker(model.settings.reload_token, "reload")

    def our_model(model_name: str) -> ForecastModel:
        if dataplane.model_registry.get_model(model_name) is not model:
            raise ModelNotFound(model_name)
        return model

    async def infer(model_name: str, request: Request, model_version: str | None = None) -> Response:
        our_model(model_name)
        if not model.ready:
            raise ModelNotReady(model_name, model.load_error or "still loading")
        headers = dict(request.headers)
        infer_request = decode_v2(await request.body(), headers, model_name)
        infer_request.model_version = model_version
        response, response_headers = await dataplane.infer(model_name, infer_request, headers)
        body, encode_headers = dataplane.encode(model_name, response, headers, {})
        response_headers.update(encode_headers)
        for key in ("content-length", "content-type"):
            response_headers.pop(key, None)
        if isinstance(body, bytes):
            return Response(body, media_type="application/octet-stream", headers=response_headers)
        return Response(orjson.dumps(body), media_type="application/json", headers=response_headers)

    @router.get("", response_model=None)
    async def get_metadata(model_name: str) -> dict:
        await dataplane.model_metadata(model_name)  # 404 for a name KServe does not serve (or unloaded)
        return our_model(model_name).describe(model.live)

    @router.get("/versions/{model_version}", response_model=None)
    async def get_version_metadata(model_name: str, model_version: str) -> dict:
        await dataplane.model_metadata(model_name)
        return await our_model(model_name).describe_version(model_version)

    async def ready(model_name: str, model_version: str | None) -> ModelReadyResponse:
        live = our_model(model_name).live
        servable = model.swapper.cache.versions() + ([live.version] if live else [])
        if not model.ready or (model_version is not None and model_version not in servable):
            raise ModelNotReady(model_name, f"version {model_version} is not loaded" if model_version else "")
        return ModelReadyResponse(name=model_name, ready=True)

    @router.get("/ready")
    async def get_ready(model_name: str, model_version: str | None = None) -> ModelReadyResponse:
        """200 when the live version (or ``model_version``, live or cached) can serve; 503 otherwise."""
        return await ready(model_name, model_version)

    @router.get("/versions/{model_version}/ready")
    async def get_version_ready(model_name: str, model_version: str) -> ModelReadyResponse:
        return await ready(model_name, model_version)

    async def infer_live(request: Request) -> Response:
        return await infer(request.path_params["model_name"], request)

    async def infer_version(request: Request) -> Response:
        params = request.path_params
        return await infer(params["model_name"], request, params["model_version"])

    # Plain Starlette routes (whose paths the router's prefix does not reach): the hot path skips
    # FastAPI's parameter solving, the body being ours to read.
    router.add_route(f"{router.prefix}/infer", infer_live, methods=["POST"])
    router.add_route(f"{router.prefix}/versions/{{model_version}}/infer", infer_version, methods=["POST"])

    @router.post("/reload", response_model=ReloadResponse)
    async def reload_model(
        model_name: str,
        alias: Annotated[
            str | None,
            Query(pattern=ALIAS_PATTERN, description="alias to follow (20250327 = backtest_20250327)"),
        ] = None,
        version: Annotated[str | None, Query(pattern=r"^\d+$", description="pin this version")] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> ReloadResponse:
        check_token(authorization)
        result = await our_model(model_name).reload(alias, version)
        return ReloadResponse(
            model_name=model_name,
            model_alias=result.current.alias,
            model_version=result.current.version,
            previous_version=result.previous.version if result.previous else None,
            was_cached=result.was_cached,
        )

    @router.get("/serving", response_model=ServingResponse)
    async def get_serving(model_name: str) -> ServingResponse:
        our_model(model_name)
        live = model.live
        answer = ServingResponse(
            model_name=model_name,
            ready=model.ready,
            cached_versions=model.swapper.cache.versions(),
            load_error=model.load_error,
        )
        if live is not None:
            config = live.loaded.config
            answer.model_alias, answer.model_version = live.alias, live.version
            answer.feature_names, answer.window = list(config.feature_names), config.window
            answer.quantiles, answer.output_names = list(config.quantiles), list(config.output_names)
            answer.synthetic, answer.data_source = config.synthetic, dict(config.data_source)
        return answer

    return router


def build_repository_router(model: ForecastModel, repository: ModelRepositoryExtension) -> APIRouter:
    """KServe's repository load/unload, behind the same token as reload (unload takes the model off)."""
    router = APIRouter(prefix="/v2/repository/models/{model_name}")
    check_token = token_checker(model.settings.reload_token, "repository load/unload")

    @router.post("/load")
    async def load_model(
        model_name: str, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, str | bool]:
        check_token(authorization)
        await repository.load(model_name)
        return {"name": model_name, "load": True}

    @router.post("/unload")
    async def unload_model(
        model_name: str, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, str | bool]:
        check_token(authorization)
        await repository.unload(model_name)
        return {"name": model_name, "unload": True}

    return router


def install(
    app: FastAPI, model: ForecastModel, dataplane: DataPlane, repository: ModelRepositoryExtension
) -> None:
    """Add our routes and body limit to ``app`` before KServe adds its own routes (the error mapping,
    :func:`predictor.errors.install`, comes after KServe's own handlers).

        KServe reads whole bodies into memory with no limit; the limit refuses an oversized body (413)
        from its Content-Length, or as soon as a chunked one passes ``MAX_BODY_BYTES``.
    """
    app.add_middleware(BodySizeLimit, limit=model.settings.max_body_bytes, protocol=True)
    app.include_router(build_router(model, dataplane))
    app.include_router(build_repository_router(model, repository))
