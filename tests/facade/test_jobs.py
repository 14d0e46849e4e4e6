"""The job store and the delivery worker as plain objects, on both backends (sqlite in tmp, a database of
the session's real PostgreSQL server); compute and deliver as functions."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from btcforecast.errors import InputError, Unavailable
from facade.job_store import PostgresJobStore, SqliteJobStore
from facade.jobs import DeliveryWorker, Job, JobStore

pytest_plugins = ["tests.fixtures.postgres"]

URL = "http://127.0.0.1:9/result"
RAN_OUT = -1.0
"""A lease that ends a second before it is given: already run out when another replica claims, with no
wait for the clock to tick (sqlite's clock counts milliseconds; a claim can come within the same one)."""
Recorder = Callable[[int, str | None], Awaitable[None]]
StoreFactory = Callable[..., JobStore]


@pytest.fixture(params=["sqlite", "postgres"])
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Factory: a store on this test's one database as replica ``owner`` would open it."""
    opened: list[JobStore] = []
    url = request.getfixturevalue("database_url") if request.param == "postgres" else None

    def open_store(owner: str = "replica-a", lease_seconds: float = 60.0) -> JobStore:
        store: JobStore
        if url:
            store = PostgresJobStore(url, owner=owner, lease_seconds=lease_seconds)
        else:
            store = SqliteJobStore(tmp_path / "jobs.db", owner=owner, lease_seconds=lease_seconds)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def store(replicas: StoreFactory) -> JobStore:
    return replicas()


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


def test_jobs_survive_a_reopened_store(replicas: StoreFactory) -> None:
    first = replicas()
    job = first.create("predict", {}, URL)
    first.set_result(job.job_id, {"ok": 1})
    first.close()
    again = replicas()
    assert again.get(job.job_id).result == {"ok": 1}
    assert [j.job_id for j in again.pending()] == [job.job_id]


def test_a_created_job_is_leased_to_the_replica_that_accepted_it(replicas: StoreFactory) -> None:
    a, b = replicas("replica-a"), replicas("replica-b")
    job = a.create("predict", {}, URL)
    assert job.claimed_by == "replica-a" and job.lease_until is not None
    assert b.claim(10) == []


def test_a_replica_resuming_takes_its_own_jobs_back(replicas: StoreFactory) -> None:
    a = replicas("replica-a")
    job = a.create("predict", {}, URL)
    assert a.claim(10) == []
    assert [j.job_id for j in a.claim(10, include_own=True)] == [job.job_id]


def test_a_job_whose_lease_ran_out_is_claimed_by_another_replica(replicas: StoreFactory) -> None:
    a, b = replicas("replica-a", lease_seconds=RAN_OUT), replicas("replica-b")
    job = a.create("predict", {}, URL)
    claimed = b.claim(10)
    assert [(j.job_id, j.claimed_by, j.interrupted) for j in claimed] == [(job.job_id, "replica-b", 0)]
    assert a.renew() == 0 and b.renew() == 1


def test_a_delivery_cut_short_by_a_dead_replica_is_counted_when_reclaimed(replicas: StoreFactory) -> None:
    a, b = replicas("replica-a", lease_seconds=RAN_OUT), replicas("replica-b")
    job = a.create("predict", {}, URL)
    a.start_delivery(job.job_id)
    assert a.get(job.job_id).delivery_started_at is not None
    [again] = b.claim(10)
    assert (again.interrupted, again.delivery_started_at) == (1, None)


def test_claims_take_the_oldest_jobs_up_to_the_limit(replicas: StoreFactory) -> None:
    a, b = replicas("replica-a", lease_seconds=RAN_OUT), replicas("replica-b")
    jobs = [a.create("predict", {"n": n}, URL) for n in range(5)]
    assert [j.job_id for j in b.claim(3)] == [j.job_id for j in jobs[:3]]
    assert [j.job_id for j in b.claim(3)] == [j.job_id for j in jobs[3:]]


def test_replicas_claiming_at_once_never_take_the_same_job(replicas: StoreFactory) -> None:
    creator = replicas("creator", lease_seconds=RAN_OUT)
    jobs = {creator.create("predict", {"n": n}, URL).job_id for n in range(60)}
    stores = [replicas(f"replica-{i}") for i in range(4)]
    taken: dict[str, list[str]] = {s.owner: [] for s in stores}
    start = threading.Barrier(len(stores))

    def drain(store: JobStore) -> None:
        start.wait()
        while batch := store.claim(3):
            taken[store.owner].extend(j.job_id for j in batch)

    threads = [threading.Thread(target=drain, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [job_id for ids in taken.values() for job_id in ids]
    assert sorted(every) == sorted(jobs)


def test_jobs_are_counted_by_state(store: JobStore) -> None:
    done, failed, _ = (store.create("predict", {}, URL) for _ in range(3))
    store.finish(done.job_id, "delivered")
    store.finish(failed.job_id, "failed", "HTTP 400")
    assert store.counts_by_state() == {"pending": 1, "delivered": 1, "failed": 1}


def test_no_jobs_count_zero_in_every_state(store: JobStore) -> None:
    assert store.counts_by_state() == {"pending": 0, "delivered": 0, "failed": 0}


def test_queue_stats_give_the_counts_and_when_the_oldest_pending_job_was_accepted(store: JobStore) -> None:
    first = store.create("predict", {"alias": "a"}, URL)
    store.create("predict", {"alias": "b"}, URL)
    done = store.create("predict", {"alias": "c"}, URL)
    store.finish(done.job_id, "delivered")

    stats = store.queue_stats()

    assert stats.by_state == {"pending": 2, "delivered": 1, "failed": 0}
    assert stats.oldest_pending_created_at == pytest.approx(first.created_at)


def test_an_empty_queue_has_no_oldest_pending_job(store: JobStore) -> None:
    assert store.queue_stats().oldest_pending_created_at is None


def test_a_finished_job_is_no_longer_pending_and_records_when(store: JobStore) -> None:
    job = store.create("predict", {}, URL)
    store.finish(job.job_id, "delivered")
    done = store.get(job.job_id)
    assert done.status == "delivered" and done.delivered_at is not None and done.lease_until is None
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
    try:
        assert await worker.start() == 1
        await finished(store, job.job_id)
    finally:
        await worker.stop()
    assert seen == [{"stored": True}]


async def test_a_worker_takes_over_the_jobs_of_a_replica_whose_lease_ran_out(replicas: StoreFactory) -> None:
    dead = replicas("dead", lease_seconds=RAN_OUT)
    job = dead.create("predict", {}, URL)
    dead.set_result(job.job_id, {"stored": True})
    survivor = replicas("survivor")
    worker = DeliveryWorker(survivor, delivered_compute, delivered, poll_seconds=0.01)
    try:
        await worker.start()
        done = await finished(survivor, job.job_id)
    finally:
        await worker.stop()
    assert (done.status, done.claimed_by) == ("delivered", "survivor")


async def delivered_compute(job: Job) -> dict[str, Any]:
    return {}


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


def test_the_postgres_queue_shares_a_database_with_mlflows_own_jobs_table(database_url: str) -> None:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, job_name TEXT)")  # MLflow 3 has one
    store = PostgresJobStore(database_url, owner="replica-a")
    try:
        job = store.create("predict", {}, URL)
        assert store.get(job.job_id) == job
    finally:
        store.close()


async def test_a_stopped_worker_hands_its_unfinished_jobs_to_another_replica_at_once(
    replicas: StoreFactory,
) -> None:
    stopping, other = replicas("stopping"), replicas("other")
    started = asyncio.Event()

    async def stuck(job: Job) -> dict[str, Any]:
        started.set()
        await asyncio.Event().wait()
        return {}

    worker = DeliveryWorker(stopping, stuck, delivered)
    job = stopping.create("predict", {}, URL)
    worker.submit(job)
    await started.wait()
    assert other.claim(10) == []
    await worker.stop()
    assert [j.job_id for j in other.claim(10)] == [job.job_id]
