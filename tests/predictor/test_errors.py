"""The predictor's error mapping: each error, ours and KServe's, its status as a problem that keeps
the Open Inference Protocol's ``error`` member; a bug is a 500."""

from __future__ import annotations

from http import HTTPStatus

import httpx
import pytest
from fastapi import FastAPI
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady

from btcforecast.errors import InputError, NotFound, Unavailable
from btcforecast.http_edge import Unauthorized
from btcforecast.model import ModelFormatError
from predictor.errors import install

RAISED: dict[str, Exception] = {
    "input": InputError("alias is empty"),
    "unauthorized": Unauthorized("reload needs a token"),
    "not-found": NotFound("no version 9"),
    "model-format": ModelFormatError("config.json lacks window"),
    "unavailable": Unavailable("MLflow is down"),
    "key-error": KeyError("window"),
    "kserve-invalid-input": InvalidInput("window 0: close must be a positive price"),
    "kserve-model-not-found": ModelNotFound("btc"),
    "kserve-model-not-ready": ModelNotReady("btc-lstm"),
}


@pytest.fixture
async def client() -> httpx.AsyncClient:
    app = FastAPI()
    install(app)

    async def raise_it(kind: str) -> None:
        raise RAISED[kind]

    app.add_api_route("/raise/{kind}", raise_it)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://predictor") as client:
        yield client


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("input", 400),
        ("unauthorized", 401),
        ("not-found", 404),
        ("model-format", 422),
        ("unavailable", 503),
        ("kserve-invalid-input", 400),
        ("kserve-model-not-found", 404),
        ("kserve-model-not-ready", 503),
    ],
)
async def test_each_error_answers_its_status_as_a_problem_with_the_protocol_error_member(
    client: httpx.AsyncClient, kind: str, status: int
) -> None:
    answer = await client.get(f"/raise/{kind}")
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    message = str(RAISED[kind])
    assert answer.json() == {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": message,
        "error": message,
    }


async def test_an_unauthorized_answer_names_the_scheme(client: httpx.AsyncClient) -> None:
    assert (await client.get("/raise/unauthorized")).headers["WWW-Authenticate"] == "Bearer"


async def test_a_programming_error_is_a_500(client: httpx.AsyncClient) -> None:
    assert (await client.get("/raise/key-error")).status_code == 500


async def test_a_bad_query_parameter_is_a_400_naming_it() -> None:
    app = FastAPI()
    install(app)

    async def count(n: int) -> int:
        return n

    app.add_api_route("/count", count)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p") as client:
        answer = await client.get("/count", params={"n": "x"})
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("invalid request: query.n: ")
    assert answer.json()["errors"] == [
        {
            "location": "query.n",
            "message": "Input should be a valid integer, unable to parse string as an integer",
        }
    ]
