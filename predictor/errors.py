"""The predictor's errors as HTTP answers, each kind mapped once, and its OpenAPI document made true.

Every answer is a problem (RFC 9457, :mod:`btcforecast.problems`) that also carries KServe's Open
Inference Protocol member ``error`` (the same text as ``detail``), so protocol clients keep working.
KServe's own errors are mapped here too, with KServe's statuses (``kserve/errors.py``): the handlers
are installed after KServe's (:func:`install` runs last), so no answer keeps KServe's bare
``{"error": ...}``. The most specific class wins; anything else is a bug (500, traceback logged).
A request that fails validation is a 400, as KServe answers any invalid input.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kserve.errors import (
    InferenceError,
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
    ServerNotLive,
    ServerNotReady,
    UnsupportedProtocol,
)
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

from btcforecast.errors import InputError, NotFound, Unavailable
from btcforecast.http_edge import Unauthorized
from btcforecast.model import ModelFormatError
from btcforecast.problems import document_problems, http_problem, problem, validation_problem

log = logging.getLogger("predictor.errors")

STATUS: dict[type[Exception], int] = {
    InputError: 400,
    InvalidInput: 400,
    Unauthorized: 401,
    NotFound: 404,
    ModelNotFound: 404,
    ModelFormatError: 422,
    NotImplementedError: 501,
    UnsupportedProtocol: 501,
    Unavailable: 503,
    ModelNotReady: 503,
    ServerNotReady: 503,
    ServerNotLive: 503,
    InferenceError: 500,
}


async def _project_error(_: Request, exc: Exception) -> JSONResponse:
    status = STATUS[next(k for k in type(exc).__mro__ if k in STATUS)]
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status >= 500:
        log.warning("%s: %s", type(exc).__name__, exc)
    return problem(status, str(exc), headers=headers, protocol=True)


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    return validation_problem(exc, 400, protocol=True)


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return http_problem(request, exc, protocol=True)


async def _bug(_: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return problem(500, f"internal error ({type(exc).__name__})", protocol=True)


# (method, path regex) -> the error statuses that operation answers, beyond a 400 for a request that
# fails validation (FastAPI's own, documented where there are parameters).
NAMED = r".*\{model_name\}.*"
INFER = r".*(/infer|:predict|:explain)$"
TOKEN = r"^/v2/(models/\{model_name\}/reload|repository/.*)$"
ERRORS: list[tuple[str, str, tuple[int, ...]]] = [
    ("*", NAMED, (404,)),
    ("POST", INFER, (400, 413, 422, 503)),
    ("POST", r".*:explain$", (501,)),
    ("POST", TOKEN, (401, 422, 503)),
    ("GET", r".*/ready$", (503,)),
    ("GET", r"^/v2/models/\{model_name\}(/versions/\{model_version\})?$", (503,)),
]


def _declare_errors(document: dict[str, Any]) -> None:
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            for wanted, pattern, statuses in ERRORS:
                if wanted in ("*", method.upper()) and re.match(pattern, path):
                    for status in statuses:
                        responses.setdefault(str(status), {"description": "see detail"})
    metrics = document.get("paths", {}).get("/metrics", {}).get("get")
    if metrics is not None:
        metrics["responses"]["200"]["content"] = {
            CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}
        }


def install(app: FastAPI) -> None:
    """Map every error, ours and KServe's; call after KServe has added its handlers."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    for kind in STATUS:
        app.add_exception_handler(kind, _project_error)
    app.add_exception_handler(Exception, _bug)
    document_problems(app, protocol=True, validation_status=400, adjust=_declare_errors)
