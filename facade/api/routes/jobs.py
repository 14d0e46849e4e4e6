"""GET /jobs/{job_id}: the state of an asynchronous prediction and its callback delivery."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException

from btcforecast.problems import problem_responses
from facade.api.deps import JobsDep
from facade.api.format import job_response
from facade.schemas import JobResponse

router = APIRouter(tags=["jobs"])


@router.get("/jobs/{job_id}", responses=problem_responses(404))
async def get_job(job_id: str, jobs: JobsDep) -> JobResponse:
    job = await asyncio.to_thread(jobs.get, job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return job_response(job)
