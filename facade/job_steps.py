"""What an asynchronous job does, as plain functions the worker (:class:`facade.jobs.DeliveryWorker`)
is given: compute the forecast the job asked for, then deliver it to the job's callback URL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from facade.api.format import forecast_payload
from facade.callbacks import post_callback
from facade.forecasts import Forecaster
from facade.jobs import Job
from facade.settings import FacadeSettings
from facade.ssrf import Allowlist, UnsafeCallbackURL, check_callback_url
from facade.time_range import parse_time


async def compute_job(forecaster: Forecaster, job: Job) -> dict[str, Any]:
    """The payload of a ``predict-champion`` or ``predict`` job, as the synchronous route answers it."""
    if job.kind == "predict-champion":
        return forecast_payload(await forecaster.champion(), stitched=True)
    p = job.params
    start = parse_time("start", p["start"]) if p.get("start") else None
    end = parse_time("end", p["end"], end_of_day=True) if p.get("end") else None
    return forecast_payload(await forecaster.predict(p["alias"], start, end), stitched=False)


async def deliver_job(
    job: Job,
    payload: dict[str, Any],
    on_attempt: Callable[[int, str | None], Awaitable[None]],
    *,
    settings: FacadeSettings,
    client: httpx.AsyncClient,
    allowlist: Allowlist,
) -> tuple[bool, str | None]:
    """POST ``payload`` to the job's callback URL, signed and retried; (delivered, last error).

    The URL is checked again: the allowlist may have shrunk since the job was accepted. Attempts
    are numbered on from those a previous run of the facade recorded.
    """
    try:
        check_callback_url(job.callback_url, allowlist)
    except UnsafeCallbackURL as e:
        return False, str(e)
    done_before = job.attempts

    async def record(attempt: int, error: str | None) -> None:
        await on_attempt(done_before + attempt, error)

    delivery = await post_callback(
        job.callback_url,
        payload,
        client=client,
        secret=settings.secret,
        timeout=settings.callback_timeout,
        retries=settings.callback_retries,
        backoff=settings.callback_backoff,
        backoff_max=settings.callback_backoff_max,
        on_attempt=record,
    )
    return delivery.delivered, delivery.error
