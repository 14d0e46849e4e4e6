"""The project's one error body: RFC 9457 problem details, answered and documented the same way by
the facade, the receiver and the predictor.

Every refusal is ``application/problem+json`` with ``type`` (``about:blank``: the status says it
all), ``title`` (the status phrase), ``status`` and ``detail`` (the human-readable message the
seed's clients read); a request that failed validation adds ``errors``, one entry per problem. The
predictor speaks KServe's Open Inference Protocol, whose clients read ``{"error": "..."}``: its
problems carry ``error`` (the same text as ``detail``) as an extension member.

:func:`document_problems` makes each app's OpenAPI document say so: every error status an
operation declares gets this schema and media type, plus the statuses any operation can answer
(a body that fails validation, a body over the size limit).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from btcforecast.http_edge import describe_validation_errors, validation_message

PROBLEM_JSON = "application/problem+json"
PARAMETER = re.compile(r"\{[^}]*\}")
HTTP_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"})


class InvalidParam(BaseModel):
    """One reason a request failed validation."""

    location: str = Field(description="where: query.<name>, header.<name>, path.<name> or body.<field>")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field("about:blank", description="about:blank: the status code says what kind")
    title: str = Field(description="the HTTP status phrase")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="what went wrong, for a human")
    errors: list[InvalidParam] | None = Field(None, description="each validation problem (422 or 400 only)")


class ProtocolProblem(Problem):
    """A problem as the predictor answers it: ``error`` is KServe's Open Inference Protocol member."""

    error: str = Field(description="the same text as detail, for Open Inference Protocol clients")


def problem(
    status: int,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    errors: list[InvalidParam] | None = None,
    protocol: bool = False,
) -> JSONResponse:
    """The ``application/problem+json`` answer for ``status`` saying ``detail``."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = [e.model_dump() for e in errors]
    if protocol:
        body["error"] = detail
    return JSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON)


def invalid_params(errors: Iterable[Mapping[str, Any]]) -> list[InvalidParam]:
    """pydantic's errors as :class:`InvalidParam` entries (``body`` kept in the location)."""
    return [
        InvalidParam(
            location=".".join(str(p) for p in e.get("loc", ())) or "body", message=validation_message(e)
        )
        for e in errors
    ]


def validation_problem(exc: RequestValidationError, status: int, *, protocol: bool = False) -> JSONResponse:
    errors = list(exc.errors())
    return problem(
        status, describe_validation_errors(errors), errors=invalid_params(errors), protocol=protocol
    )


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the OpenAPI document gives for ``path`` (every route at that path: Starlette's 405
    names only the first route's methods, and two routes may share a path). Where several templates
    match (``/v1/models/{name}`` also matches ``/v1/models/m:predict``), the most literal one is the
    resource meant."""
    matches = [
        (len(PARAMETER.sub("", template)), {m.upper() for m in item if m.upper() in HTTP_METHODS})
        for template, item in app.openapi().get("paths", {}).items()
        if re.fullmatch("[^/]+".join(map(re.escape, PARAMETER.split(template))), path)
    ]
    literal = max((n for n, _ in matches), default=0)
    return sorted(set().union(*(methods for n, methods in matches if n == literal)))


def http_problem(request: Request, exc: StarletteHTTPException, *, protocol: bool = False) -> JSONResponse:
    """Starlette's own refusals (404 no route, 405 method) as problems; 405 lists every allowed method."""
    headers = dict(exc.headers or {})
    allowed = allowed_methods(request.app, request.url.path) if exc.status_code == 405 else []
    if allowed:
        headers["Allow"] = ", ".join(allowed)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem(exc.status_code, detail, headers=headers, protocol=protocol)


def _served_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, where a path and method two routes share describes the first: Starlette
    serves the first match, while FastAPI lets the later route overwrite the description."""
    forward = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes[::-1]
    )
    document["paths"] = {path: document["paths"][path] for path in forward.get("paths", {})}
    return document


def _problem_content(schema_name: str) -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}}


def document_problems(
    app: FastAPI,
    *,
    protocol: bool = False,
    validation_status: int = 422,
    adjust: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Make ``app.openapi()`` declare the problem bodies the app really sends.

    Every declared status >= 400 is answered with :class:`Problem` (:class:`ProtocolProblem` when
    ``protocol``) as ``application/problem+json``; FastAPI's own 422 becomes ``validation_status``;
    ``adjust`` edits the document before the bodies are set (a component's own declarations).
    """
    model = ProtocolProblem if protocol else Problem
    name = model.__name__

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = _served_document(app)
        operations = [op for item in document.get("paths", {}).values() for op in item.values()]
        for operation in operations:
            responses = operation.setdefault("responses", {})
            if "422" in responses and validation_status != 422:
                responses[str(validation_status)] = responses.pop("422") | {"description": "Invalid request"}
        if adjust is not None:
            adjust(document)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for key in ("HTTPValidationError", "ValidationError"):
            schemas.pop(key, None)
        defs = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(defs.pop("$defs", {}))
        schemas[name] = defs
        for operation in operations:
            for status, response in operation["responses"].items():
                if status.isdigit() and int(status) >= 400:
                    response["content"] = _problem_content(name)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status with its phrase (the body schema is added by
    :func:`document_problems`)."""
    return {status: {"description": HTTPStatus(status).phrase} for status in statuses}
