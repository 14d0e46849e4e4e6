"""Two real facade processes on one PostgreSQL job queue, one SIGKILLed mid-delivery.

Deliveries are counted at the sender's side of the wire: a loopback HTTP receiver of the test's own
counts every POST it gets, duplicates included (the project's receiver stores a job once and would
hide a second POST). 200 jobs with stored results are put on the queue, the receiver lets the first
40 POSTs through and then holds every answer, so both replicas end up with their in-flight POSTs
waiting at the receiver; one replica is killed, the receiver lets go, and the survivor takes the dead
replica's jobs over once their lease runs out.

What must hold (docs/reliability.md): every job is delivered; a job is POSTed twice only if the
replica that owned it died between its POST reaching the receiver and the answer being committed,
and the store knows exactly which jobs those are (``interrupted``); every other job, exactly once.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from btcforecast.devservers import components
from btcforecast.devservers.process import LOOPBACK, ManagedProcess, free_port
from facade.callbacks import JOB_HEADER
from facade.job_store import PostgresJobStore
from tests.facade.conftest import wait_until

pytest_plugins = ["tests.fixtures.postgres"]
pytestmark = pytest.mark.timeout(300)

JOBS = 200
LET_THROUGH = 40
MAX_CLAIMED = 8
LEASE_SECONDS = 3.0


class CountingReceiver:
    """Counts every POST by job id; after ``let_through`` POSTs, holds each answer until ``release()``."""

    def __init__(self, let_through: int) -> None:
        self.posts: Counter[str] = Counter()
        self.held: set[str] = set()
        self._let_through = let_through
        self._lock = threading.Lock()
        self._released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                job_id = self.headers.get(JOB_HEADER, "")
                with receiver._lock:
                    receiver.posts[job_id] += 1
                    hold = receiver.posts.total() > receiver._let_through and not receiver._released.is_set()
                    if hold:
                        receiver.held.add(job_id)
                if hold:
                    receiver._released.wait()
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:  # the sender was killed while its POST was held
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self.server.server_port}/result"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def snapshot(self) -> tuple[Counter[str], set[str]]:
        with self._lock:
            return Counter(self.posts), set(self.held)

    def release(self) -> None:
        self._released.set()

    def __enter__(self) -> CountingReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[CountingReceiver]:
    with CountingReceiver(LET_THROUGH) as counting:
        yield counting


def replica(name: str, database_url: str, state: Path) -> ManagedProcess:
    """A facade process that only delivers: MLflow, the predictor and market data are never needed."""
    env = {
        "DATABASE_URL": database_url,
        "STATE_DIR": str(state / name),
        "MLFLOW_TRACKING_URI": f"http://{LOOPBACK}:9",
        "PREDICTOR_URL": f"http://{LOOPBACK}:9",
        "MARKET_DATA_URI": str(state / "no-market.parquet"),
        "JOBS_LEASE_SECONDS": str(LEASE_SECONDS),
        "JOBS_POLL_SECONDS": "0.2",
        "JOBS_MAX_CLAIMED": str(MAX_CLAIMED),
        "CALLBACK_TIMEOUT": "240",  # a held POST must not time out and be retried: only the kill is tested
        "CALLBACK_RETRIES": "20",
        "CALLBACK_BACKOFF": "0.1",
        "CALLBACK_BACKOFF_MAX": "0.5",
    }
    return components.facade_process(free_port(), env, state / f"{name}.log", name=name)


def test_two_replicas_deliver_every_job_and_only_a_killed_replicas_in_flight_posts_twice(
    database_url: str, receiver: CountingReceiver, tmp_path: Path
) -> None:
    queue = PostgresJobStore(database_url, owner="submitter", lease_seconds=0.0)
    job_ids = []
    for n in range(JOBS):
        job = queue.create("predict", {"n": n}, receiver.url)
        queue.set_result(job.job_id, {"job_id": job.job_id, "kind": "predict", "status": "succeeded"})
        job_ids.append(job.job_id)

    def in_flight() -> dict[str, str]:
        """Job id -> owner, for jobs whose delivery has started and is not yet committed."""
        return {j.job_id: j.claimed_by for j in queue.pending() if j.delivery_started_at is not None}

    def owners_of_held() -> Counter[str]:
        _, held = receiver.snapshot()
        started = in_flight()
        return Counter(started[j] for j in held if j in started)

    with replica("facade-a", database_url, tmp_path) as a, replica("facade-b", database_url, tmp_path) as b:

        def both_stalled() -> bool:
            started = in_flight()
            _, held = receiver.snapshot()
            per_owner = owners_of_held()
            return (
                set(started) == held
                and len(per_owner) == 2
                and all(n == MAX_CLAIMED for n in per_owner.values())
            )

        wait_until(both_stalled, 120, lambda: f"held per owner: {owners_of_held()}\n{a.log_tail()}")
        at_kill = in_flight()
        victim_owner = next(o for o in at_kill.values() if o.rsplit("-", 2)[-2] == str(a.pid))
        victims_jobs = {j for j, owner in at_kill.items() if owner == victim_owner}
        a.kill()
        receiver.release()

        wait_until(
            lambda: queue.counts_by_state()["delivered"] == JOBS,
            180,
            lambda: f"{queue.counts_by_state()}\n{b.log_tail()}",
        )

    jobs = {job_id: queue.get(job_id) for job_id in job_ids}
    posts, _ = receiver.snapshot()
    queue.close()

    assert len(victims_jobs) == MAX_CLAIMED
    assert {j for j, job in jobs.items() if job.interrupted} == victims_jobs
    assert all(jobs[j].claimed_by != victim_owner for j in victims_jobs)
    assert {j: posts[j] for j in job_ids} == {j: 1 + jobs[j].interrupted for j in job_ids}
    assert set(posts) == set(job_ids)
    assert all(job.attempts == 1 for job in jobs.values())
    assert posts.total() == JOBS + len(victims_jobs)
