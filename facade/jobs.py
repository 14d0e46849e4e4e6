"""Asynchronous prediction jobs: the worker that runs each accepted job to its delivery.

The job store (``facade.job_store``: sqlite, or PostgreSQL shared by replicas) holds the promise:
the job is committed before the 202 answer, its result before the first delivery attempt, and every
attempt is recorded. The worker runs the jobs it owns: those its replica accepted, and those it
claims from the store, on start and then every ``poll_seconds`` (jobs nobody holds a live lease on:
never claimed, or left by a replica that died). While it works it renews its leases. It recomputes a
result that was never stored and redelivers one that was; the receiver is idempotent on ``job_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from btcforecast.errors import ProjectError, Unavailable
from facade.job_store import Job, JobStatus, JobStore, open_job_store

__all__ = ["DeliveryWorker", "Job", "JobStatus", "JobStore", "open_job_store"]

log = logging.getLogger("facade.jobs")


Compute = Callable[[Job], Awaitable[dict[str, Any]]]
Deliver = Callable[
    [Job, dict[str, Any], Callable[[int, str | None], Awaitable[None]]], Awaitable[tuple[bool, str | None]]
]


class DeliveryWorker:
    """Runs each job it owns to the end: compute (retrying while a dependency is down), then deliver.

    At most ``max_jobs`` claimed jobs run at once (jobs this replica accepted always run), so that
    replicas share a backlog instead of the first one to start taking all of it.
    """

    def __init__(
        self,
        store: JobStore,
        compute: Compute,
        deliver: Deliver,
        *,
        compute_retries: int = 5,
        retry_delay: Callable[[int], float] = lambda attempt: min(30.0, 2.0**attempt),
        concurrency: int = 2,
        max_jobs: int = 16,
        poll_seconds: float = 5.0,
    ) -> None:
        self.store = store
        self._compute = compute
        self._deliver = deliver
        self._compute_retries = compute_retries
        self._retry_delay = retry_delay
        self._compute_slots = asyncio.Semaphore(concurrency)
        self._max_jobs = max_jobs
        self._poll_seconds = poll_seconds
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Resume the jobs this replica may take now (its own included); returns how many.

        Then claims more every ``poll_seconds`` (or as soon as a job ends) and renews its leases.
        """
        jobs = await asyncio.to_thread(self.store.claim, self._max_jobs, include_own=True)
        for job in jobs:
            self.submit(job)
        if jobs:
            log.info("resuming %d pending callback job(s)", len(jobs))
        self._poller = asyncio.create_task(self._poll(), name="jobs-poller")
        return len(jobs)

    def submit(self, job: Job) -> None:
        if job.job_id not in self._tasks:
            task = asyncio.create_task(self._run(job), name=f"job-{job.job_id}")
            self._tasks[job.job_id] = task
            task.add_done_callback(lambda _t, job_id=job.job_id: self._ended(job_id))

    def _ended(self, job_id: str) -> None:
        self._tasks.pop(job_id, None)
        self._wake.set()

    async def _poll(self) -> None:
        renew_every = max(self.store.lease_seconds / 3, 0.05)
        renewed = asyncio.get_running_loop().time()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(self._poll_seconds, renew_every))
            self._wake.clear()
            try:
                now = asyncio.get_running_loop().time()
                if self._tasks and now - renewed >= renew_every:
                    await asyncio.to_thread(self.store.renew)
                    renewed = now
                room = self._max_jobs - len(self._tasks)
                if room > 0:
                    for job in await asyncio.to_thread(self.store.claim, room):
                        self.submit(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be away for a while: keep trying, say so
                log.exception("claiming or renewing callback jobs failed; retrying")

    async def stop(self) -> None:
        """Cancels the work and hands unfinished jobs back, for another replica to take at once."""
        tasks = list(self._tasks.values())
        if self._poller is not None:
            tasks.append(self._poller)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):  # best effort: otherwise the leases simply run out
            released = await asyncio.to_thread(self.store.release)
            if released:
                log.info("handed %d unfinished callback job(s) back to the queue", released)

    async def _run(self, job: Job) -> None:
        try:
            result = job.result if job.result is not None else await self._compute_result(job)
            await asyncio.to_thread(self.store.start_delivery, job.job_id)
            delivered, error = await self._deliver(job, result, self._recorder(job.job_id))
            status: JobStatus = "delivered" if delivered else "failed"
            await asyncio.to_thread(self.store.finish, job.job_id, status, error)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug must fail the job visibly, not kill the worker silently
            log.exception("job %s failed", job.job_id)
            await asyncio.to_thread(self.store.finish, job.job_id, "failed", f"internal error: {e}")

    async def _compute_result(self, job: Job) -> dict[str, Any]:
        payload: dict[str, Any]
        for attempt in range(1, self._compute_retries + 2):
            try:
                async with self._compute_slots:
                    result = await self._compute(job)
                payload = {"job_id": job.job_id, "kind": job.kind, "status": "succeeded", "result": result}
                break
            except Unavailable as e:
                if attempt > self._compute_retries:
                    payload = _failure(job, f"dependency unavailable: {e}")
                    break
                await asyncio.to_thread(self.store.record_attempt, job.job_id, 0, f"computing: {e}")
                await asyncio.sleep(self._retry_delay(attempt))
            except ProjectError as e:  # the request cannot succeed: fail the job, saying why
                payload = _failure(job, str(e))
                break
        await asyncio.to_thread(self.store.set_result, job.job_id, payload)
        return payload

    def _recorder(self, job_id: str) -> Callable[[int, str | None], Awaitable[None]]:
        async def record(attempt: int, error: str | None) -> None:
            await asyncio.to_thread(self.store.record_attempt, job_id, attempt, error)

        return record


def _failure(job: Job, error: str) -> dict[str, Any]:
    return {"job_id": job.job_id, "kind": job.kind, "status": "failed", "error": error}
