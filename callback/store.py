"""Durable storage of received results, one row per job id: an embedded sqlite file (WAL) by default,
or PostgreSQL shared by every replica of the receiver when ``DATABASE_URL`` is set.

A result is committed before the receiver answers 200, so a restart loses nothing that was
acknowledged; a second delivery of the same job (a retry after a lost answer, a replay) changes
nothing and is reported as a duplicate.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from btcforecast.database import STARTUP_WAIT, Postgres
from btcforecast.durable import open_durable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    job_id TEXT PRIMARY KEY,
    received_at DOUBLE PRECISION NOT NULL,
    signed_at BIGINT,
    payload TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class StoredResult:
    job_id: str
    received_at: float
    signed_at: int | None
    payload: dict[str, Any]


_SELECT = "SELECT job_id, received_at, signed_at, payload FROM results"
_INSERT = (
    "INSERT INTO results (job_id, received_at, signed_at, payload) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (job_id) DO NOTHING"
)


class ResultStore:
    """Results by job id in a sqlite file; safe to use from the event loop's worker threads."""

    def __init__(self, path: Path) -> None:
        self._conn, self._lock = open_durable(path, _SCHEMA)

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _exec(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._lock:
            return self._conn.execute(sql, params).rowcount

    def add(self, job_id: str, payload: dict[str, Any], signed_at: int | None) -> bool:
        """Store a result; False when this job id was stored before (nothing changes)."""
        return self._exec(_INSERT, (job_id, time.time(), signed_at, json.dumps(payload))) == 1

    def get(self, job_id: str) -> StoredResult | None:
        rows = self._rows(f"{_SELECT} WHERE job_id = ?", (job_id,))
        return _row(rows[0]) if rows else None

    def list(self, limit: int = 100) -> list[StoredResult]:
        return [_row(r) for r in self._rows(f"{_SELECT} ORDER BY received_at DESC LIMIT ?", (limit,))]

    def count(self) -> int:
        return int(self._rows("SELECT COUNT(*) FROM results")[0][0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class PostgresResultStore(ResultStore):
    """The same results in PostgreSQL, shared by every replica of the receiver.

    The table is ``callback_results``: the database may be shared with MLflow and the facade.
    """

    table = "callback_results"

    def __init__(self, url: str, startup_wait: float = STARTUP_WAIT) -> None:
        self._db = Postgres(url, [self._sql(_SCHEMA)], startup_wait=startup_wait)

    def _sql(self, sql: str) -> str:
        return re.sub(r"\bresults\b", self.table, sql).replace("?", "%s")

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self._db.fetchall(self._sql(sql), params)

    def _exec(self, sql: str, params: tuple[Any, ...]) -> int:
        return self._db.execute(self._sql(sql), params)

    def close(self) -> None:
        self._db.close()


def open_result_store(
    database_url: str | None, sqlite_path: Path, startup_wait: float = STARTUP_WAIT
) -> ResultStore:
    """PostgreSQL when a database URL is configured (waited for up to ``startup_wait`` s), else sqlite."""
    if database_url:
        return PostgresResultStore(database_url, startup_wait=startup_wait)
    return ResultStore(sqlite_path)


def _row(row: tuple[Any, ...]) -> StoredResult:
    return StoredResult(job_id=row[0], received_at=row[1], signed_at=row[2], payload=json.loads(row[3]))
