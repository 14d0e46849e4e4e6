"""The receiver's result store on both backends (sqlite in tmp, a database of a real PostgreSQL server)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from btcforecast.signing import SIGNATURE_HEADER, sign
from callback.main import create_app
from callback.settings import CallbackSettings
from callback.store import ResultStore, open_result_store

pytest_plugins = ["tests.fixtures.postgres"]

SECRET = "receiver-secret"


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> str | None:
    """The database URL of this test's backend; None for the embedded sqlite file."""
    return request.getfixturevalue("database_url") if request.param == "postgres" else None


@pytest.fixture
def replicas(database: str | None, tmp_path: Path) -> Iterator[Callable[[], ResultStore]]:
    """Factory: another store on this test's one database, as another replica opens it."""
    opened: list[ResultStore] = []

    def open_store() -> ResultStore:
        opened.append(open_result_store(database, tmp_path / "callback.db"))
        return opened[-1]

    yield open_store
    for store in opened:
        store.close()


def test_a_result_is_stored_once_and_read_back(replicas: Callable[[], ResultStore]) -> None:
    store = replicas()
    assert store.add("j1", {"n": 1}, signed_at=1_700_000_000)
    stored = store.get("j1")
    assert (stored.job_id, stored.payload, stored.signed_at) == ("j1", {"n": 1}, 1_700_000_000)
    assert store.get("unknown") is None


def test_a_duplicate_through_another_replica_changes_nothing(replicas: Callable[[], ResultStore]) -> None:
    first, second = replicas(), replicas()
    assert first.add("j1", {"n": 1}, None)
    assert not second.add("j1", {"n": 2}, None)
    assert second.get("j1").payload == {"n": 1} and second.count() == 1


def test_results_are_listed_newest_first_up_to_the_limit(replicas: Callable[[], ResultStore]) -> None:
    store = replicas()
    for n in range(3):
        store.add(f"j{n}", {"n": n}, None)
    assert [r.job_id for r in store.list(limit=2)] == ["j2", "j1"]
    assert store.count() == 3


async def test_two_receivers_on_one_postgres_database_answer_a_redelivery_as_a_duplicate(
    database_url: str, tmp_path: Path
) -> None:
    body = json.dumps({"job_id": "shared"}).encode()
    answers = []
    for name in ("a", "b"):
        settings = CallbackSettings(
            state_dir=tmp_path / name, callback_secret=SECRET, database_url=database_url
        )
        app = create_app(settings)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://receiver") as client,
        ):
            response = await client.post(
                "/result", content=body, headers={SIGNATURE_HEADER: sign(SECRET, body)}
            )
            answers.append(response.json()["status"])
    assert answers == ["stored", "duplicate"]


def test_the_database_url_may_come_as_a_mounted_secret_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "DATABASE_URL").write_text("postgresql://btcf:pw@db:5432/btcf\n")
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert CallbackSettings().database == "postgresql://btcf:pw@db:5432/btcf"
    assert "pw" not in repr(CallbackSettings())
