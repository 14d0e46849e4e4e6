"""Each kind of project error answers its one status; anything else is a bug and answers 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from btcforecast.errors import InputError, NotFound, Unavailable
from btcforecast.modelalias import ReloadFailed, ReloadInProgress, ReloadTimeout
from facade.evaluation import NoRecentData
from facade.main import create_app
from facade.predictor_client import PredictorRejected
from tests.facade.inprocess import offline_settings

RAISED: dict[str, Exception] = {
    "input": InputError("start is empty"),
    "not-found": NotFound("alias 'x' not found"),
    "unavailable": Unavailable("MLflow is down"),
    "reload-timeout": ReloadTimeout("no answer in 120 s"),
    "reload-failed": ReloadFailed("ImagePull", "cannot pull"),
    "reload-busy": ReloadInProgress("a reload is under way"),
    "no-recent-data": NoRecentData("3 hours"),
    "predictor-rejected": PredictorRejected("bad shape"),
    "key-error": KeyError("alias"),
    "index-error": IndexError("list index out of range"),
    "lookup-error": LookupError("a bare LookupError"),
    "value-error": ValueError("a bare ValueError"),
}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(offline_settings(tmp_path))

    async def raise_it(kind: str) -> None:
        raise RAISED[kind]

    app.add_api_route("/raise/{kind}", raise_it)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://facade") as client,
    ):
        yield client


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("input", 422),
        ("not-found", 404),
        ("unavailable", 503),
        ("reload-timeout", 504),
        ("reload-failed", 502),
        ("reload-busy", 409),
        ("no-recent-data", 409),
        ("predictor-rejected", 502),
    ],
)
async def test_each_project_error_answers_its_status_with_its_message(
    client: httpx.AsyncClient, kind: str, status: int
) -> None:
    answer = await client.get(f"/raise/{kind}")
    assert answer.status_code == status
    assert str(RAISED[kind]) in answer.json()["detail"]


@pytest.mark.parametrize("kind", ["key-error", "index-error", "lookup-error", "value-error"])
async def test_a_programming_error_answers_500_not_a_client_error(
    client: httpx.AsyncClient, kind: str
) -> None:
    answer = await client.get(f"/raise/{kind}")
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json() == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": f"internal error ({type(RAISED[kind]).__name__})",
    }


async def test_a_500_does_not_echo_the_exception_message(client: httpx.AsyncClient) -> None:
    answer = await client.get("/raise/value-error")
    assert "a bare ValueError" not in answer.text
