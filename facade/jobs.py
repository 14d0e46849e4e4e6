"""Asynchronous prediction jobs: a durable sqlite (WAL) store and the worker that delivers them.

Accepting a job with a callback URL is a promise to deliver it, so the job is committed before
the 202 answer, its result is committed before the first delivery attempt, and every attempt is
recorded. On start the worker resumes every job still pending: it recomputes a result that was
never stored and redelivers one that was; the receiver is idempotent on ``job_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from btcforecast.durable import open_durable
from btcforecast.errors import ProjectError, Unavailable
from facade.metrics import QueueStats

log = logging.getLogger("facade.jobs")

JobStatus = Literal["pending", "delivered", "failed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    callback_url TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    delivered_at REAL
)
"""
_COLUMNS = (
    "job_id, kind, params, callback_url, status, result, attempts, last_error,"
    " created_at, updated_at, delivered_at"
)


@dataclass(frozen=True)
class Job:
    job_id: str
    kind: str
    params: dict[str, Any]
    callback_url: str
    status: JobStatus
    result: dict[str, Any] | None
    attempts: int
    last_error: str | None
    created_at: float
    updated_at: float
    delivered_at: float | None


class JobStore:
    """Jobs by id in one sqlite file; calls are short and serialised by a lock."""

    def __init__(self, path: Path) -> None:
        self._conn, self._lock = open_durable(path, _SCHEMA)

    def create(self, kind: str, params: dict[str, Any], callback_url: str) -> Job:
        now = time.time()
        job_id = uuid.uuid4().hex
        with self._lock:
            self._conn.execute(
                "INSERT INTO jobs (job_id, kind, params, callback_url, status, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                (job_id, kind, json.dumps(params), callback_url, now, now),
            )
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def pending(self) -> list[Job]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE status = 'pending' ORDER BY created_at"
            ).fetchall()
        return [_job(r) for r in rows]

    def queue_stats(self) -> QueueStats:
        """Jobs by status and the acceptance time of the oldest pending one (read at scrape time)."""
        with self._lock:
            counts = self._conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
            (oldest,) = self._conn.execute(
                "SELECT MIN(created_at) FROM jobs WHERE status = 'pending'"
            ).fetchone()
        return QueueStats(by_state={status: n for status, n in counts}, oldest_pending_created_at=oldest)

    def set_result(self, job_id: str, result: dict[str, Any]) -> None:
        self._update(job_id, result=json.dumps(result))

    def record_attempt(self, job_id: str, attempts: int, error: str | None) -> None:
        self._update(job_id, attempts=attempts, last_error=error)

    def finish(self, job_id: str, status: JobStatus, error: str | None = None) -> None:
        fields: dict[str, Any] = {"status": status}
        if status == "delivered":
            fields["delivered_at"] = time.time()
        if error is not None:
            fields["last_error"] = error
        self._update(job_id, **fields)

    def _update(self, job_id: str, **fields: Any) -> None:
        fields["updated_at"] = time.time()
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._lock:
            self._conn.execute(f"UPDATE jobs SET {assignments} WHERE job_id = ?", (*fields.values(), job_id))

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _job(row: tuple[Any, ...]) -> Job:
    return Job(
        job_id=row[0],
        kind=row[1],
        params=json.loads(row[2]),
        callback_url=row[3],
        status=row[4],
        result=json.loads(row[5]) if row[5] is not None else None,
        attempts=row[6],
        last_error=row[7],
        created_at=row[8],
        updated_at=row[9],
        delivered_at=row[10],
    )


Compute = Callable[[Job], Awaitable[dict[str, Any]]]
Deliver = Callable[
    [Job, dict[str, Any], Callable[[int, str | None], Awaitable[None]]], Awaitable[tuple[bool, str | None]]
]


class DeliveryWorker:
    """Runs each pending job to the end: compute (retrying while a dependency is down), then deliver."""

    def __init__(
        self,
        store: JobStore,
        compute: Compute,
        deliver: Deliver,
        *,
        compute_retries: int = 5,
        retry_delay: Callable[[int], float] = lambda attempt: min(30.0, 2.0**attempt),
        concurrency: int = 2,
    ) -> None:
        self.store = store
        self._compute = compute
        self._deliver = deliver
        self._compute_retries = compute_retries
        self._retry_delay = retry_delay
        self._compute_slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> int:
        """Resume every pending job; returns how many."""
        jobs = await asyncio.to_thread(self.store.pending)
        for job in jobs:
            self.submit(job)
        if jobs:
            log.info("resuming %d pending callback job(s)", len(jobs))
        return len(jobs)

    def submit(self, job: Job) -> None:
        if job.job_id not in self._tasks:
            task = asyncio.create_task(self._run(job), name=f"job-{job.job_id}")
            self._tasks[job.job_id] = task
            task.add_done_callback(lambda _t, job_id=job.job_id: self._tasks.pop(job_id, None))

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self, job: Job) -> None:
        try:
            result = job.result if job.result is not None else await self._compute_result(job)
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
