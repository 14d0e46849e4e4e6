"""The OpenAPI documents are the contract: schemathesis, every check, against all three servers.

The facade, the receiver and the predictor each run in-process (ASGI) and schemathesis' engine (what
its CLI runs) walks each app's own ``/openapi.json`` through the examples, coverage and fuzzing
phases with every check enabled (``--checks all``): every answer must be documented, match its
declared schema and media type, refuse what the schema says is invalid, accept what it says is
valid, never be a 5xx, and a 405 must list the allowed methods. Any finding fails the test, listed
with the request that produced it.

Bounded for CI: a few examples per operation, deterministic (a CI failure reproduces locally). The
facade talks to the real predictor process and the session's MLflow through an outbound client held
to loopback; callbacks it might accept can only go to loopback too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema
from schemathesis.python import asgi

from btcforecast.devservers.process import ManagedProcess
from callback.main import create_app as create_receiver
from callback.settings import CallbackSettings
from facade.main import create_app as create_facade
from tests.fixtures.registry import RegisteredModel
from tests.predictor.inprocess import serve_in_process
from tests.reliability.conftest import RELOAD_TOKEN, SECRET, LoopbackOnly, facade_settings

pytestmark = pytest.mark.timeout(300)

MAX_EXAMPLES = 5
"""Generated cases per operation in the fuzzing phase (the examples and coverage phases add theirs)."""

CONFIG = {
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "mode": "all"},
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
        "stateful": {"enabled": False},
    },
    "checks": {"enabled": True},
}


def findings(app: FastAPI) -> list[str]:
    """Every check that failed on ``app``'s OpenAPI document, one line each with its request."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=SchemathesisConfig.from_dict(CONFIG))
    found: list[str] = []
    try:
        for event in from_schema(schema).execute():
            if isinstance(event, events.FatalError | events.NonFatalError):
                found.append(f"engine error: {event.info.title}: {event.info.message}")
            if not isinstance(event, events.ScenarioFinished):
                continue
            recorder = event.recorder
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.status is not Status.FAILURE:
                        continue
                    case = recorder.cases[case_id].value
                    interaction = recorder.interactions.get(case_id)
                    answer = interaction.response if interaction else None
                    status = answer.status_code if answer else None
                    body = answer.content[:300] if answer and answer.content else b""
                    title = check.failure_info.failure.title if check.failure_info else ""
                    found.append(
                        f"{check.name} ({title}): {case.method} {case.formatted_path} query={case.query} "
                        f"headers={case.headers} body={case.body!r} -> {status} {body!r}"
                    )
    finally:
        asgi.shutdown_lifespans()
    return sorted(set(found))


@pytest.fixture(scope="module")
def outbound() -> Iterator[LoopbackOnly]:
    transport = LoopbackOnly()
    yield transport
    assert transport.off_loopback == []


def test_the_facade_answers_as_its_openapi_document_says(
    tmp_path_factory: pytest.TempPathFactory,
    registered: RegisteredModel,
    market_uri: str,
    predictor: ManagedProcess,
    outbound: LoopbackOnly,
) -> None:
    state = tmp_path_factory.mktemp("fuzz-facade")
    client = httpx.AsyncClient(transport=outbound, timeout=httpx.Timeout(30.0, connect=2.0))
    app = create_facade(facade_settings(state, registered, market_uri, predictor.url), http_client=client)
    found = findings(app)
    assert not found, "\n".join(found)


def test_the_receiver_answers_as_its_openapi_document_says(tmp_path: Path) -> None:
    app = create_receiver(CallbackSettings(state_dir=tmp_path, callback_secret=SECRET))
    found = findings(app)
    assert not found, "\n".join(found)


def test_the_predictor_answers_as_its_openapi_document_says(
    tmp_path: Path, registered: RegisteredModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, app = serve_in_process(registered, tmp_path, monkeypatch, reload_token=RELOAD_TOKEN)
    found = findings(app)
    assert not found, "\n".join(found)
