"""btcforecast.database.Postgres at start: a database that comes up after the component is waited for,
one that never does is reported once the wait is over (real PostgreSQL servers, Debian's package)."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from btcforecast.database import Postgres
from btcforecast.devservers.postgres import init_postgres
from btcforecast.devservers.process import free_port


def test_a_store_waits_for_a_database_that_starts_after_it() -> None:
    server = init_postgres()  # under /tmp: the server runs as the postgres user, pytest's tmp is root's
    opened: list[Postgres] = []
    failed: list[BaseException] = []

    def open_store() -> None:
        try:
            opened.append(Postgres(server.url(), ["CREATE TABLE kept (x int)"], startup_wait=240))
        except BaseException as e:  # reported by the assertion below
            failed.append(e)

    waiting = threading.Thread(target=open_store)
    waiting.start()
    time.sleep(1.0)  # the store is refused at least once before the server exists
    try:
        server.start()
        waiting.join(timeout=300)
        assert not failed and opened, failed
        opened[0].execute("INSERT INTO kept VALUES (1)")
        assert opened[0].fetchall("SELECT x FROM kept") == [(1,)]
        opened[0].close()
    finally:
        server.stop()


def test_a_database_that_never_answers_is_reported_once_the_wait_is_over() -> None:
    url = f"postgresql://btcf:secret@127.0.0.1:{free_port()}/btcf"
    with pytest.raises(psycopg.OperationalError, match=r"refused|failed"):
        Postgres(url, ["CREATE TABLE never (x int)"], startup_wait=0.5)
