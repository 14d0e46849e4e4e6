"""Durable storage of received results: sqlite in WAL mode, one row per job id.

A result is committed before the receiver answers 200, so a restart loses nothing that was
acknowledged; a second delivery of the same job (a retry after a lost answer, a replay) changes
nothing and is reported as a duplicate.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from btcforecast.durable import open_durable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    job_id TEXT PRIMARY KEY,
    received_at REAL NOT NULL,
    signed_at INTEGER,
    payload TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class StoredResult:
    job_id: str
    received_at: float
    signed_at: int | None
    payload: dict[str, Any]


class ResultStore:
    """Results by job id; safe to use from the event loop's worker threads."""

    def __init__(self, path: Path) -> None:
        self._conn, self._lock = open_durable(path, _SCHEMA)

    def add(self, job_id: str, payload: dict[str, Any], signed_at: int | None) -> bool:
        """Store a result; False when this job id was stored before (nothing changes)."""
        with self._lock:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO results (job_id, received_at, signed_at, payload) VALUES (?, ?, ?, ?)",
                (job_id, time.time(), signed_at, json.dumps(payload)),
            )
            return cur.rowcount == 1

    def get(self, job_id: str) -> StoredResult | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT job_id, received_at, signed_at, payload FROM results WHERE job_id = ?", (job_id,)
            ).fetchone()
        return _row(row) if row else None

    def list(self, limit: int = 100) -> list[StoredResult]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT job_id, received_at, signed_at, payload FROM results"
                " ORDER BY received_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [_row(r) for r in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _row(row: tuple[Any, ...]) -> StoredResult:
    return StoredResult(job_id=row[0], received_at=row[1], signed_at=row[2], payload=json.loads(row[3]))
