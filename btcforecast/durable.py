"""A durable sqlite file for things a service must not lose (accepted jobs, received results).

WAL journal and FULL sync: a row is on disk when the call returns, so an answer sent after the write
survives a crash; autocommit mode and one lock per connection keep each call short and serialised.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


def open_durable(path: Path, schema: str) -> tuple[sqlite3.Connection, threading.Lock]:
    """The connection (usable from worker threads) and the lock that serialises its use."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    lock = threading.Lock()
    with lock:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(schema)
    return conn, lock
