"""POST /mlflow-webhook: MLflow says an alias moved; drop it from the alias cache at once.

Only a delivery signed with ``MLFLOW_WEBHOOK_SECRET`` is acted on (401 otherwise, nothing changes);
without a secret configured the route answers 404. The cache's own bound holds either way.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from btcforecast.errors import InputError
from btcforecast.mlflow_webhooks import SignatureError, parse_alias_event, verify
from facade.api.deps import ForecasterDep, SettingsDep
from facade.schemas import ErrorResponse

router = APIRouter(tags=["webhooks"])


@router.post(
    "/mlflow-webhook",
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
    include_in_schema=False,
)
async def receive_mlflow_webhook(
    request: Request, forecaster: ForecasterDep, settings: SettingsDep
) -> JSONResponse:
    secret = settings.webhook_secret
    if not secret:
        return JSONResponse(status_code=404, content={"detail": "no MLflow webhook is configured"})
    body = await request.body()
    try:
        verify(secret, request.headers, body)
        event = parse_alias_event(body)
    except SignatureError as e:
        return JSONResponse(status_code=401, content={"detail": str(e)})
    except InputError as e:
        return JSONResponse(status_code=400, content={"detail": str(e)})
    invalidated = event is not None and forecaster.alias_moved(event.model, event.alias)
    return JSONResponse(content={"invalidated": invalidated})
