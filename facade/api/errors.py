"""Exceptions to HTTP answers: what a client sent is a 4xx naming the problem; a dependency down is 503.

Every answer is ``{"detail": "..."}`` so clients read errors one way.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from btcforecast.aliases import InvalidAliasError
from btcforecast.bodylimit import BodyTooLarge
from btcforecast.errors import DependencyUnavailable
from btcforecast.market import MarketDataNotFound
from btcforecast.modelalias import ReloadFailed, ReloadInProgress, ReloadTimeout
from facade.errors import InputError
from facade.predictor_client import PredictorRejected
from facade.reload import ClusterModeUnavailable
from facade.ssrf import UnsafeCallbackURL

log = logging.getLogger("facade.api")


def _answer(status: int, prefix: str = ""):
    async def handler(_: Request, exc: Exception) -> JSONResponse:
        if status >= 500:
            log.warning("%s: %s", type(exc).__name__, exc)
        return JSONResponse(status_code=status, content={"detail": f"{prefix}{exc}"})

    return handler


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
        for e in exc.errors()
    )
    return JSONResponse(status_code=422, content={"detail": f"invalid request: {problems}"})


async def _http(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI answers a body it cannot read with a bare 400 "error parsing the body"; say why instead.

    A chunked body cut off by the size limit is a 413 (the limit's own answer never gets a chance:
    FastAPI catches the error while reading); bytes that are not UTF-8 JSON are a 422 like any
    other malformed body.
    """
    cause = exc.__cause__
    if exc.status_code == 400 and isinstance(cause, BodyTooLarge):
        limit = request.app.state.settings.max_body_bytes
        return JSONResponse(
            status_code=413, content={"detail": f"request body is over the {limit}-byte limit"}
        )
    if exc.status_code == 400 and cause is not None:
        problem = f"{type(cause).__name__}: {str(cause)[:200]}"
        return JSONResponse(
            status_code=422, content={"detail": f"invalid request: the body is not readable JSON ({problem})"}
        )
    return await http_exception_handler(request, exc)


def install(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(InvalidAliasError, _answer(422))
    app.add_exception_handler(InputError, _answer(422))
    app.add_exception_handler(UnsafeCallbackURL, _answer(422))
    app.add_exception_handler(MarketDataNotFound, _answer(503, "market data: "))
    app.add_exception_handler(LookupError, _answer(404))
    app.add_exception_handler(DependencyUnavailable, _answer(503))
    app.add_exception_handler(PredictorRejected, _answer(502, "the predictor rejected the request: "))
    app.add_exception_handler(ClusterModeUnavailable, _answer(503))
    app.add_exception_handler(ReloadFailed, _answer(502, "the operator reports the rollout failed: "))
    app.add_exception_handler(ReloadTimeout, _answer(504))  # more specific than DependencyUnavailable
    app.add_exception_handler(ReloadInProgress, _answer(409))
