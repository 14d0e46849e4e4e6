"""Assembles the receiver: settings, the result store and the routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from btcforecast.problems import problem_responses
from btcforecast.signing import SIGNATURE_HEADER
from callback import errors
from callback.metrics import ReceiverMetrics
from callback.settings import CallbackSettings, get_settings
from callback.store import ResultStore, StoredResult, open_result_store
from callback.verify import check_signature, parse_result, read_limited


class Health(BaseModel):
    status: str
    results: int
    signatures_required: bool


class Accepted(BaseModel):
    status: str
    """``stored`` for a new job id, ``duplicate`` when it was stored before."""
    job_id: str


class Result(BaseModel):
    job_id: str
    received_at: str
    signed_at: int | None
    payload: dict[str, Any]


RESULT_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["job_id"],
                "properties": {"job_id": {"type": "string", "minLength": 1, "maxLength": 128}},
                "additionalProperties": True,
            }
        }
    },
}
"""What /result reads from the raw bytes (the signature covers them, so no model parses them first)."""


class ResultList(BaseModel):
    results: list[Result]
    count: int


def _result(stored: StoredResult) -> Result:
    received = datetime.fromtimestamp(stored.received_at, UTC).isoformat()
    return Result(
        job_id=stored.job_id, received_at=received, signed_at=stored.signed_at, payload=stored.payload
    )


def _store(request: Request) -> ResultStore:
    return request.app.state.store


def _settings(request: Request) -> CallbackSettings:
    return request.app.state.settings


StoreDep = Annotated[ResultStore, Depends(_store)]
SettingsDep = Annotated[CallbackSettings, Depends(_settings)]


def create_app(settings: CallbackSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store = open_result_store(
            settings.database, settings.db_path, startup_wait=settings.database_startup_wait
        )
        try:
            yield
        finally:
            app.state.store.close()

    app = FastAPI(title="btc-forecast callback receiver", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = ReceiverMetrics()
    errors.install(app)

    @app.get("/health")
    async def get_health(store: StoreDep) -> Health:
        count = await asyncio.to_thread(store.count)
        return Health(status="ok", results=count, signatures_required=settings.secret is not None)

    @app.post(
        "/result",
        responses={
            400: {"description": "not a JSON object with a job_id"},
            401: {"description": "a missing, stale or wrong signature"},
            413: {"description": "body over MAX_BODY_BYTES"},
        },
        openapi_extra={"requestBody": RESULT_BODY},
    )
    async def post_result(request: Request, store: StoreDep, cfg: SettingsDep) -> Accepted:
        body = await read_limited(request.stream(), cfg.max_body_bytes, request.headers.get("content-length"))
        signature = request.headers.get(SIGNATURE_HEADER)
        signed_at = check_signature(cfg.secret, signature, body, cfg.max_skew_seconds)
        job_id, payload = parse_result(body)
        added = await asyncio.to_thread(store.add, job_id, payload, signed_at)
        outcome = "stored" if added else "duplicate"
        request.app.state.metrics.received.labels(outcome=outcome).inc()
        return Accepted(status=outcome, job_id=job_id)

    @app.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    async def metrics() -> Response:
        """Prometheus text exposition of the receiver's counters."""
        return Response(generate_latest(app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/results")
    async def list_results(store: StoreDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> ResultList:
        stored = await asyncio.to_thread(store.list, limit)
        return ResultList(results=[_result(s) for s in stored], count=len(stored))

    @app.get("/results/{job_id}", responses=problem_responses(404))
    async def get_result(job_id: str, store: StoreDep) -> Result:
        stored = await asyncio.to_thread(store.get, job_id)
        if stored is None:
            raise HTTPException(404, f"no result for job {job_id!r}")
        return _result(stored)

    return app
