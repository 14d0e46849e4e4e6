"""Exceptions to HTTP answers, each kind mapped once: every answer is a problem (RFC 9457,
:mod:`btcforecast.problems`) whose ``detail`` says what went wrong.

The project's errors (:mod:`btcforecast.errors`) carry what went wrong; this table says which
status each kind is. The most specific class wins (Starlette looks handlers up along the MRO), so
a ``ReloadTimeout`` is a 504 although it is ``Unavailable``. A malformed request is refused by
the parameters' declared patterns (422) before any code runs, so what the code refuses after is a
well-formed request that names nothing (404: an alias that can never exist is no alias), asks for
hours the data does not hold (409) or a callback the SSRF rules refuse (403).
Anything not in the table is a bug: a 500 whose traceback the server logs.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from btcforecast.alias_names import InvalidAliasError
from btcforecast.bodylimit import BodyTooLarge
from btcforecast.errors import InputError, NotFound, Unavailable
from btcforecast.http_edge import Unauthorized
from btcforecast.modelalias import ReloadFailed, ReloadInProgress, ReloadTimeout
from btcforecast.problems import document_problems, http_problem, problem, validation_problem
from facade.evaluation import NoRecentData
from facade.predictor_client import PredictorRejected
from facade.ssrf import UnsafeCallbackURL
from facade.time_range import OutOfData

log = logging.getLogger("facade.api")

STATUS: dict[type[Exception], int] = {
    InputError: 422,
    InvalidAliasError: 404,
    OutOfData: 409,
    UnsafeCallbackURL: 403,
    Unauthorized: 401,
    NotFound: 404,
    NoRecentData: 409,
    ReloadInProgress: 409,
    Unavailable: 503,
    ReloadTimeout: 504,
    PredictorRejected: 502,
    ReloadFailed: 502,
}
PREFIX: dict[type[Exception], str] = {
    PredictorRejected: "the predictor rejected the request: ",
    ReloadFailed: "the operator reports the rollout failed: ",
}


async def _project_error(_: Request, exc: Exception) -> JSONResponse:
    kind = next(k for k in type(exc).__mro__ if k in STATUS)
    status = STATUS[kind]
    if status >= 500:
        log.warning("%s: %s", type(exc).__name__, exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return problem(status, f"{PREFIX.get(kind, '')}{exc}", headers=headers)


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    return validation_problem(exc, 422)


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """FastAPI answers a body it cannot read with a bare 400 "error parsing the body"; say why instead.

    A chunked body cut off by the size limit is a 413 (the limit's own answer never gets a chance:
    FastAPI catches the error while reading); bytes that are not UTF-8 JSON are a 422 like any
    other malformed body.
    """
    cause = exc.__cause__
    if exc.status_code == 400 and isinstance(cause, BodyTooLarge):
        limit = request.app.state.settings.max_body_bytes
        return problem(413, f"request body is over the {limit}-byte limit")
    if exc.status_code == 400 and cause is not None:
        reason = f"{type(cause).__name__}: {str(cause)[:200]}"
        return problem(422, f"invalid request: the body is not readable JSON ({reason})")
    return http_problem(request, exc)


async def _bug(_: Request, exc: Exception) -> JSONResponse:
    """A 500 in the project's one error shape; the server still logs the traceback (Starlette re-raises)."""
    return problem(500, f"internal error ({type(exc).__name__})")


def install(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    for kind in STATUS:
        app.add_exception_handler(kind, _project_error)
    app.add_exception_handler(Exception, _bug)
    document_problems(app)
