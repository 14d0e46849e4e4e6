"""Where accepted callback jobs live: one interface, two backends (embedded sqlite, shared PostgreSQL).

Accepting a job with a callback URL is a promise to deliver it, so a job is committed before the 202
answer. Every job is owned by one replica at a time through a lease: ``claimed_by`` names the owner
and ``lease_until`` (the database's clock, in epoch seconds) says until when. The owner renews its
leases while it works; a job whose lease ran out (its replica was killed, or hung) is claimed by
another replica. PostgreSQL claims with ``SELECT ... FOR UPDATE SKIP LOCKED``, so replicas claiming
at the same moment never take the same job.

``delivery_started_at`` is written, and committed, before a job's first POST and cleared when its
outcome is; a claim that finds it set knows the previous owner died while delivering and counts it in
``interrupted``: such a job is the only kind that can reach its receiver twice (see docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from btcforecast.database import STARTUP_WAIT, Postgres
from btcforecast.durable import open_durable

JobStatus = Literal["pending", "delivered", "failed"]
JOB_STATES: tuple[JobStatus, ...] = ("pending", "delivered", "failed")
DEFAULT_LEASE_SECONDS = 30.0

_COLUMNS = (
    "job_id, kind, params, callback_url, status, result, attempts, last_error,"
    " created_at, updated_at, delivered_at, claimed_by, lease_until, delivery_started_at, interrupted"
)
_CLAIM_COLUMNS = {
    "claimed_by": "TEXT",
    "lease_until": "DOUBLE PRECISION",
    "delivery_started_at": "DOUBLE PRECISION",
    "interrupted": "INTEGER NOT NULL DEFAULT 0",
}
_TABLE = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    callback_url TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    delivered_at DOUBLE PRECISION
)
"""
_INDEX = "CREATE INDEX IF NOT EXISTS btcf_jobs_pending ON jobs (status, created_at)"


@dataclass(frozen=True)
class QueueStats:
    """Callback jobs by state, and when the oldest pending one was accepted (None: none pending)."""

    by_state: dict[str, int]
    oldest_pending_created_at: float | None


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
    claimed_by: str | None = None
    lease_until: float | None = None
    delivery_started_at: float | None = None
    interrupted: int = 0


class JobStore(Protocol):
    """What the facade needs of a job store; both backends implement exactly this."""

    owner: str
    lease_seconds: float

    def create(self, kind: str, params: dict[str, Any], callback_url: str) -> Job:
        """A new pending job, already claimed by this store's owner."""
        ...

    def get(self, job_id: str) -> Job | None: ...

    def pending(self) -> list[Job]: ...

    def claim(self, limit: int, *, include_own: bool = False) -> list[Job]:
        """Up to ``limit`` pending jobs nobody holds a live lease on, now leased to this owner.

        ``include_own``: also the jobs this owner holds (a restarted process resuming its own work).
        """
        ...

    def renew(self) -> int:
        """Extends every lease this owner still holds; how many."""
        ...

    def release(self) -> int:
        """Ends every lease this owner holds on a pending job (a replica stopping); how many."""
        ...

    def start_delivery(self, job_id: str) -> None: ...

    def set_result(self, job_id: str, result: dict[str, Any]) -> None: ...

    def record_attempt(self, job_id: str, attempts: int, error: str | None) -> None: ...

    def finish(self, job_id: str, status: JobStatus, error: str | None = None) -> None: ...

    def counts_by_state(self) -> dict[str, int]:
        """Jobs per status (every status present, 0 when none): a read-only query for metrics."""
        ...

    def queue_stats(self) -> QueueStats:
        """Jobs per status and the acceptance time of the oldest pending one (read at scrape time)."""
        ...

    def close(self) -> None: ...


def replica_id() -> str:
    """This process's owner name: host (the pod's name in Kubernetes), pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class _SqlJobStore:
    """The SQL both backends share; a backend supplies ``_rows``, ``_exec``, ``_now`` and ``claim``."""

    table = "jobs"
    owner: str
    lease_seconds: float
    _now: str  # SQL expression: the database's clock in epoch seconds

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        raise NotImplementedError

    def create(self, kind: str, params: dict[str, Any], callback_url: str) -> Job:
        now = time.time()
        job_id = uuid.uuid4().hex
        self._exec(
            "INSERT INTO jobs (job_id, kind, params, callback_url, status, created_at, updated_at,"
            f" claimed_by, lease_until) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, {self._now} + ?)",
            (job_id, kind, json.dumps(params), callback_url, now, now, self.owner, self.lease_seconds),
        )
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> Job | None:
        rows = self._rows(f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def pending(self) -> list[Job]:
        rows = self._rows(f"SELECT {_COLUMNS} FROM jobs WHERE status = 'pending' ORDER BY created_at")
        return [_job(r) for r in rows]

    def renew(self) -> int:
        return self._exec(
            f"UPDATE jobs SET lease_until = {self._now} + ? WHERE claimed_by = ? AND status = 'pending'",
            (self.lease_seconds, self.owner),
        )

    def release(self) -> int:
        return self._exec(
            "UPDATE jobs SET lease_until = NULL WHERE claimed_by = ? AND status = 'pending'", (self.owner,)
        )

    def start_delivery(self, job_id: str) -> None:
        self._exec(f"UPDATE jobs SET delivery_started_at = {self._now} WHERE job_id = ?", (job_id,))

    def set_result(self, job_id: str, result: dict[str, Any]) -> None:
        self._update(job_id, result=json.dumps(result))

    def record_attempt(self, job_id: str, attempts: int, error: str | None) -> None:
        self._update(job_id, attempts=attempts, last_error=error)

    def finish(self, job_id: str, status: JobStatus, error: str | None = None) -> None:
        fields: dict[str, Any] = {"status": status, "lease_until": None, "delivery_started_at": None}
        if status == "delivered":
            fields["delivered_at"] = time.time()
        if error is not None:
            fields["last_error"] = error
        self._update(job_id, **fields)

    def counts_by_state(self) -> dict[str, int]:
        counts = dict.fromkeys(JOB_STATES, 0)
        for status, count in self._rows("SELECT status, COUNT(*) FROM jobs GROUP BY status"):
            counts[status] = int(count)
        return counts

    def queue_stats(self) -> QueueStats:
        ((oldest,),) = self._rows("SELECT MIN(created_at) FROM jobs WHERE status = 'pending'")
        return QueueStats(self.counts_by_state(), None if oldest is None else float(oldest))

    def _update(self, job_id: str, **fields: Any) -> None:
        fields["updated_at"] = time.time()
        assignments = ", ".join(f"{k} = ?" for k in fields)
        self._exec(f"UPDATE jobs SET {assignments} WHERE job_id = ?", (*fields.values(), job_id))

    def _claimable(self, include_own: bool) -> str:
        own = " OR claimed_by = ?" if include_own else ""
        return f"status = 'pending' AND (lease_until IS NULL OR lease_until < {self._now}{own})"

    _CLAIM_SET = (
        "claimed_by = ?, lease_until = {now} + ?,"
        " interrupted = interrupted + CASE WHEN delivery_started_at IS NULL THEN 0 ELSE 1 END,"
        " delivery_started_at = NULL"
    )


class SqliteJobStore(_SqlJobStore):
    """Jobs in one sqlite file (WAL): the embedded default, for one replica.

    Only one process uses the file, so opening it releases every lease a previous run held: that
    run is over, and its jobs are this one's to resume at once.
    """

    _now = "((julianday('now') - 2440587.5) * 86400.0)"

    def __init__(
        self, path: Path, owner: str = "local", lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> None:
        self.owner, self.lease_seconds = owner, lease_seconds
        self._conn, self._lock = open_durable(path, _TABLE)
        with self._lock:
            present = {row[1] for row in self._conn.execute("PRAGMA table_info(jobs)")}
            for column, kind in _CLAIM_COLUMNS.items():
                if column not in present:
                    self._conn.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")
            self._conn.execute(_INDEX)
            self._conn.execute("UPDATE jobs SET lease_until = NULL WHERE status = 'pending'")

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        with self._lock:
            return self._conn.execute(sql, params).rowcount

    def claim(self, limit: int, *, include_own: bool = False) -> list[Job]:
        own = (self.owner,) if include_own else ()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                ids = [
                    r[0]
                    for r in self._conn.execute(
                        f"SELECT job_id FROM jobs WHERE {self._claimable(include_own)}"
                        " ORDER BY created_at LIMIT ?",
                        (*own, limit),
                    )
                ]
                marks = ", ".join("?" * len(ids))
                rows = self._conn.execute(
                    f"UPDATE jobs SET {self._CLAIM_SET.format(now=self._now)} WHERE job_id IN ({marks})"
                    f" RETURNING {_COLUMNS}",
                    (self.owner, self.lease_seconds, *ids),
                ).fetchall()
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return sorted((_job(r) for r in rows), key=lambda j: j.created_at)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class PostgresJobStore(_SqlJobStore):
    """Jobs in a PostgreSQL database shared by every facade replica.

    The table is ``facade_jobs``: the database may be shared with MLflow, which has a ``jobs`` table.
    """

    table = "facade_jobs"

    _now = "extract(epoch from clock_timestamp())::double precision"

    def __init__(
        self,
        url: str,
        owner: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        startup_wait: float = STARTUP_WAIT,
    ) -> None:
        self.owner, self.lease_seconds = owner or replica_id(), lease_seconds
        columns = [f"ALTER TABLE jobs ADD COLUMN IF NOT EXISTS {c} {k}" for c, k in _CLAIM_COLUMNS.items()]
        schema = [self._sql(s) for s in (_TABLE, *columns, _INDEX)]
        self._db = Postgres(url, schema, startup_wait=startup_wait)

    def _sql(self, sql: str) -> str:
        """Our table's name and psycopg's placeholders."""
        return re.sub(r"\bjobs\b", self.table, sql).replace("?", "%s")

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self._db.fetchall(self._sql(sql), params)

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return self._db.execute(self._sql(sql), params)

    def claim(self, limit: int, *, include_own: bool = False) -> list[Job]:
        own = (self.owner,) if include_own else ()
        sql = (
            f"UPDATE jobs SET {self._CLAIM_SET.format(now=self._now)} WHERE job_id IN ("
            f" SELECT job_id FROM jobs WHERE {self._claimable(include_own)}"
            " ORDER BY created_at LIMIT ? FOR UPDATE SKIP LOCKED)"
            f" RETURNING {_COLUMNS}"
        )
        sql = self._sql(sql)
        params = (self.owner, self.lease_seconds, *own, limit)
        rows = self._db.transaction(lambda conn: conn.execute(sql, params).fetchall())
        return sorted((_job(r) for r in rows), key=lambda j: j.created_at)

    def close(self) -> None:
        self._db.close()


def open_job_store(
    database_url: str | None,
    sqlite_path: Path,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    startup_wait: float = STARTUP_WAIT,
) -> JobStore:
    """PostgreSQL when a database URL is configured (waited for up to ``startup_wait`` s), else sqlite."""
    if database_url:
        return PostgresJobStore(database_url, lease_seconds=lease_seconds, startup_wait=startup_wait)
    return SqliteJobStore(sqlite_path, lease_seconds=lease_seconds)


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
        claimed_by=row[11],
        lease_until=row[12],
        delivery_started_at=row[13],
        interrupted=row[14],
    )
