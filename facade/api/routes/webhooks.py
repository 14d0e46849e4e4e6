"""POST /mlflow-webhook: MLflow says an alias moved; drop it from the alias cache at once.

Only a delivery signed with ``MLFLOW_WEBHOOK_SECRET`` is acted on (401 otherwise, nothing changes);
without a secret configured the route answers 404. The cache's own bound holds either way.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from btcforecast.errors import NotFound
from btcforecast.http_edge import Unauthorized
from btcforecast.mlflow_webhooks import SignatureError, parse_alias_event, verify
from btcforecast.problems import problem_responses
from facade.api.deps import ForecasterDep, SettingsDep

router = APIRouter(tags=["webhooks"])


@router.post("/mlflow-webhook", responses=problem_responses(401, 404, 422), include_in_schema=False)
async def receive_mlflow_webhook(
    request: Request, forecaster: ForecasterDep, settings: SettingsDep
) -> dict[str, bool]:
    secret = settings.webhook_secret
    if not secret:
        raise NotFound("no MLflow webhook is configured")
    body = await request.body()
    try:
        verify(secret, request.headers, body)
    except SignatureError as e:
        raise Unauthorized(str(e)) from e
    event = parse_alias_event(body)
    return {"invalidated": event is not None and forecaster.alias_moved(event.model, event.alias)}
