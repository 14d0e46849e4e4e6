"""The project's one error body (RFC 9457) and the OpenAPI document that declares it."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, HTTPException
from starlette.exceptions import HTTPException as StarletteHTTPException

from btcforecast.problems import PROBLEM_JSON, allowed_methods, document_problems, http_problem, problem


def test_a_problem_carries_type_title_status_and_detail() -> None:
    answer = problem(404, "no alias 'x'")
    assert answer.media_type == PROBLEM_JSON
    assert answer.body == b'{"type":"about:blank","title":"Not Found","status":404,"detail":"no alias \'x\'"}'


def test_a_protocol_problem_repeats_the_detail_as_error() -> None:
    assert b'"detail":"bad","error":"bad"' in problem(400, "bad", protocol=True).body


def two_routes_on_one_path() -> FastAPI:
    app = FastAPI()
    app.add_exception_handler(StarletteHTTPException, http_problem)  # type: ignore[arg-type]

    @app.get("/items/{item}", responses={404: {"description": "no such item"}})
    async def get_item(item: str) -> dict[str, str]:
        raise HTTPException(404, f"no item {item!r}")

    @app.post("/items/{item}")
    async def post_item(item: str) -> dict[str, str]:
        return {"item": item}

    @app.post("/items/{item}:archive")
    async def archive_item(item: str) -> dict[str, str]:
        return {"item": item}

    document_problems(app)
    return app


def test_the_document_declares_the_problem_body_for_every_error_status() -> None:
    document = two_routes_on_one_path().openapi()
    responses = document["paths"]["/items/{item}"]["get"]["responses"]
    for status in ("404", "422"):
        assert responses[status]["content"] == {
            PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_the_document_describes_the_first_of_two_routes_sharing_a_path_and_method() -> None:
    app = two_routes_on_one_path()

    @app.get("/items/{item}")
    async def shadowed(item: str, extra: int) -> dict[str, str]:
        return {}

    app.openapi_schema = None
    parameters = app.openapi()["paths"]["/items/{item}"]["get"]["parameters"]
    assert [p["name"] for p in parameters] == ["item"]


def test_the_allowed_methods_are_every_method_of_the_most_literal_matching_path() -> None:
    app = two_routes_on_one_path()
    assert allowed_methods(app, "/items/a") == ["GET", "POST"]
    assert allowed_methods(app, "/items/a:archive") == ["POST"]
    assert allowed_methods(app, "/elsewhere") == []


async def test_a_405_lists_every_method_of_the_path_in_allow() -> None:
    transport = httpx.ASGITransport(app=two_routes_on_one_path())
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        answer = await client.delete("/items/a")
    assert answer.status_code == 405 and answer.headers["allow"] == "GET, POST"
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert answer.json()["title"] == "Method Not Allowed"
