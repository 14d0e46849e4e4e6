"""The optional shared PostgreSQL database: its setting, and one connection a store shares between threads.

Without ``DATABASE_URL`` a component keeps its state in an embedded sqlite file (``btcforecast.durable``),
which only one process may use; with it, every replica of the facade and the receiver uses the same
PostgreSQL database, so they can run side by side. The URL may carry a password, so it is a secret
(set it in the environment or as a file ``DATABASE_URL`` under ``SECRETS_DIR``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")
log = logging.getLogger("btcforecast.database")
STARTUP_WAIT = 60.0
"""Seconds a store waits at start for the database to accept connections (see ``Postgres``)."""


class DatabaseSettings(BaseSettings):
    """Where shared state lives when a component runs more than one replica."""

    database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL URL (postgresql://user:password@host:5432/db) of the state shared by "
        "replicas; unset = an embedded sqlite file under STATE_DIR (one replica only)",
    )

    database_startup_wait: float = Field(
        STARTUP_WAIT,
        ge=0,
        description="seconds a component waits at start for the database to accept connections "
        "(it is not ready meanwhile; in a cluster the database may start after it)",
    )

    @property
    def database(self) -> str | None:
        return self.database_url.get_secret_value() if self.database_url else None


def libpq_url(url: str) -> str:
    """``url`` as libpq reads it: SQLAlchemy's ``postgresql+psycopg://`` scheme is accepted too."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}" if sep else url


class Postgres:
    """One autocommit connection, serialised by a lock; reopened once when the server dropped it.

    A store's calls are short, so one connection per process is enough; ``transaction`` runs a
    function inside one transaction (a claim that must lock rows and update them atomically).
    """

    def __init__(
        self,
        url: str,
        schema: Sequence[str],
        connect_timeout: float = 10.0,
        startup_wait: float = STARTUP_WAIT,
    ) -> None:
        """Connects and creates ``schema``, retrying for up to ``startup_wait`` seconds while the
        server refuses or is not up yet (a release starts its database beside its components, so
        they must not exit because it came up second); then the connection error is raised."""
        import psycopg

        self._url = libpq_url(url)
        self._timeout = connect_timeout
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        deadline, delay = time.monotonic() + startup_wait, 0.25
        while True:
            try:
                self._create(schema)
                return
            except psycopg.OperationalError as e:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("the database does not accept connections yet, retrying in %.2g s: %s", delay, e)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _create(self, schema: Sequence[str]) -> None:
        with self._lock:
            conn = self._connection()
            with conn.transaction():
                # concurrent first starts of several replicas would race on CREATE IF NOT EXISTS
                conn.execute("SELECT pg_advisory_xact_lock(4242013)")
                for statement in schema:
                    conn.execute(statement)

    def _connection(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=int(self._timeout))
        return self._conn

    def run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``work(connection)`` under the lock, retried once on a fresh connection if the old one broke."""
        import psycopg

        with self._lock:
            try:
                return work(self._connection())
            except psycopg.OperationalError:
                if self._conn is not None and not self._conn.broken:
                    raise
                self._conn = None
                return work(self._connection())

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        def work(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

        return self.run(work)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Runs one statement; the number of rows it changed."""
        return self.run(lambda conn: conn.execute(sql, params).rowcount)

    def transaction(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        def in_transaction(conn: psycopg.Connection[Any]) -> T:
            with conn.transaction():
                return work(conn)

        return self.run(in_transaction)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
