"""The receiver's refusals as HTTP answers, mapped once: 413 too large, 400 unusable body, 401 signature.

Every refusal is counted by reason and answered as a problem (RFC 9457, :mod:`btcforecast.problems`),
as the facade and the predictor answer.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from btcforecast.problems import document_problems, http_problem, problem, validation_problem
from callback.verify import BodyTooLarge, InvalidResult, SignatureError

STATUS: dict[type[Exception], int] = {BodyTooLarge: 413, InvalidResult: 400, SignatureError: 401}


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    request.app.state.metrics.refusal(exc)
    return problem(STATUS[type(exc)], str(exc))


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    return validation_problem(exc, 422)


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return http_problem(request, exc)


def install(app: FastAPI) -> None:
    for error in STATUS:
        app.add_exception_handler(error, _refused)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    document_problems(app)
