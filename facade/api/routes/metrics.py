"""GET /metrics: the facade's Prometheus metrics in the text exposition format (no token, not in the schema).

Rendering reads the job store (:class:`facade.metrics.JobCollector`), so it runs in a worker thread.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def get_metrics(request: Request) -> Response:
    body = await asyncio.to_thread(generate_latest, request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
