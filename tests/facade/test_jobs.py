"""The job store and the delivery worker as plain objects: sqlite in tmp, compute and deliver as functions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from btcforecast.errors import InputError, Unavailable
from facade.jobs import DeliveryWorker, Job, JobStore

URL = "http://127.0.0.1:9/result"
Recorder = Callable[[int, str | None], Awaitable[None]]


@pytest.fixture
def store(tmp_path: Path):
    jobs = JobStore(tmp_path / "jobs.db")
    yield jobs
    jobs.close()


async def delivered(job: Job, payload: dict[str, Any], on_attempt: Recorder) -> tuple[bool, str | None]:
    await on_attempt(1, None)
    return True, None


async def finished(store: JobStore, job_id: str) -> Job:
    for _ in range(200):
        job = store.get(job_id)
        assert job is not None
        if job.status != "pending":
            return job
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {job_id} still pending")


def test_a_created_job_is_pending_with_its_parameters(store: JobStore) -> None:
    job = store.create("predict", {"alias": "production"}, URL)
    assert store.get(job.job_id) == job
    assert (job.status, job.params, job.callback_url, job.attempts) == (
        "pending",
        {"alias": "production"},
        URL,
        0,
    )


def test_an_unknown_job_id_is_none(store: JobStore) -> None:
    assert store.get("nope") is None


def test_jobs_survive_a_reopened_store(tmp_path: Path) -> None:
    first = JobStore(tmp_path / "jobs.db")
    job = first.create("predict", {}, URL)
    first.set_result(job.job_id, {"ok": 1})
    first.close()
    again = JobStore(tmp_path / "jobs.db")
    try:
        assert again.get(job.job_id).result == {"ok": 1}
        assert [j.job_id for j in again.pending()] == [job.job_id]
    finally:
        again.close()


def test_a_finished_job_is_no_longer_pending_and_records_when(store: JobStore) -> None:
    job = store.create("predict", {}, URL)
    store.finish(job.job_id, "delivered")
    done = store.get(job.job_id)
    assert done.status == "delivered" and done.delivered_at is not None
    assert store.pending() == []


async def test_the_worker_computes_stores_and_delivers_a_job(store: JobStore) -> None:
    async def compute(job: Job) -> dict[str, Any]:
        return {"answer": 42}

    worker = DeliveryWorker(store, compute, delivered)
    job = store.create("predict", {}, URL)
    worker.submit(job)
    done = await finished(store, job.job_id)
    assert done.status == "delivered" and done.attempts == 1
    assert done.result == {
        "job_id": job.job_id,
        "kind": "predict",
        "status": "succeeded",
        "result": {"answer": 42},
    }


async def test_a_dependency_down_is_retried_until_it_answers(store: JobStore) -> None:
    calls = 0

    async def compute(job: Job) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise Unavailable("MLflow is down")
        return {"answer": 1}

    worker = DeliveryWorker(store, compute, delivered, compute_retries=5, retry_delay=lambda _: 0.0)
    job = store.create("predict", {}, URL)
    worker.submit(job)
    done = await finished(store, job.job_id)
    assert calls == 3 and done.result["status"] == "succeeded"


async def test_a_dependency_down_past_the_retries_delivers_a_failure(store: JobStore) -> None:
    async def compute(job: Job) -> dict[str, Any]:
        raise Unavailable("MLflow is down")

    worker = DeliveryWorker(store, compute, delivered, compute_retries=2, retry_delay=lambda _: 0.0)
    job = store.create("predict", {}, URL)
    worker.submit(job)
    done = await finished(store, job.job_id)
    assert done.status == "delivered"
    assert done.result == {
        "job_id": job.job_id,
        "kind": "predict",
        "status": "failed",
        "error": "dependency unavailable: MLflow is down",
    }


async def test_a_request_that_cannot_succeed_delivers_its_reason_at_once(store: JobStore) -> None:
    calls = 0

    async def compute(job: Job) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        raise InputError("start is after end")

    worker = DeliveryWorker(store, compute, delivered, retry_delay=lambda _: 0.0)
    job = store.create("predict", {}, URL)
    worker.submit(job)
    done = await finished(store, job.job_id)
    assert calls == 1 and done.result["error"] == "start is after end"


async def test_a_bug_in_compute_fails_the_job_as_an_internal_error(store: JobStore) -> None:
    async def compute(job: Job) -> dict[str, Any]:
        return {}["missing"]

    worker = DeliveryWorker(store, compute, delivered)
    job = store.create("predict", {}, URL)
    worker.submit(job)
    done = await finished(store, job.job_id)
    assert done.status == "failed" and done.last_error == "internal error: 'missing'"


async def test_a_stored_result_is_redelivered_without_computing_again(store: JobStore) -> None:
    async def compute(job: Job) -> dict[str, Any]:
        raise AssertionError("computed again")

    job = store.create("predict", {}, URL)
    store.set_result(job.job_id, {"stored": True})
    seen: list[dict[str, Any]] = []

    async def deliver(job: Job, payload: dict[str, Any], on_attempt: Recorder) -> tuple[bool, str | None]:
        seen.append(payload)
        return True, None

    worker = DeliveryWorker(store, compute, deliver)
    assert await worker.start() == 1
    await finished(store, job.job_id)
    assert seen == [{"stored": True}]


async def test_an_undelivered_job_is_failed_with_the_delivery_error(store: JobStore) -> None:
    async def compute(job: Job) -> dict[str, Any]:
        return {}

    async def refused(job: Job, payload: dict[str, Any], on_attempt: Recorder) -> tuple[bool, str | None]:
        await on_attempt(1, "HTTP 400")
        return False, "HTTP 400"

    worker = DeliveryWorker(store, compute, refused)
    job = store.create("predict", {}, URL)
    worker.submit(job)
    done = await finished(store, job.job_id)
    assert (done.status, done.last_error, done.attempts) == ("failed", "HTTP 400", 1)
