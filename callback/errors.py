"""The receiver's refusals as HTTP answers, mapped once: 413 too large, 400 unusable body, 401 signature.

Every refusal is counted by reason and answered ``{"detail": "..."}``, as the facade answers.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from callback.verify import BodyTooLarge, InvalidResult, SignatureError

STATUS: dict[type[Exception], int] = {BodyTooLarge: 413, InvalidResult: 400, SignatureError: 401}


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    request.app.state.metrics.refusal(exc)
    return JSONResponse(status_code=STATUS[type(exc)], content={"detail": str(exc)})


def install(app: FastAPI) -> None:
    for error in STATUS:
        app.add_exception_handler(error, _refused)
