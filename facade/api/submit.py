"""Accepting an asynchronous job: check the callback URL, commit the job, hand it to the worker."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from facade.jobs import DeliveryWorker, JobStore
from facade.schemas import JobAccepted
from facade.ssrf import Allowlist, check_callback_url


async def check_url(url: str, allowlist: Allowlist) -> str:
    """422 (UnsafeCallbackURL) before any connection; a DNS lookup only for allowlisted names."""
    return await asyncio.to_thread(check_callback_url, url, allowlist)


async def accept(
    request: Request, jobs: JobStore, worker: DeliveryWorker, kind: str, params: dict[str, Any], url: str
) -> JSONResponse:
    job = await asyncio.to_thread(jobs.create, kind, params, url)
    worker.submit(job)
    status_url = str(request.url_for("get_job", job_id=job.job_id))
    body = JobAccepted(job_id=job.job_id, status=job.status, status_url=status_url, callback_url=url)
    return JSONResponse(status_code=202, content=body.model_dump(), headers={"Location": status_url})
