"""Fixtures for the reliability suite: in-process apps whose outbound traffic is held to loopback.

The facade and the receiver run in-process (``httpx.ASGITransport``); the facade's one outbound
HTTP client goes through :class:`LoopbackOnly`, which fails the test if a request is ever aimed
at anything but 127.0.0.1 / localhost / ::1. The predictor runs in-process on KServe's app
(``tests/predictor/inprocess.py``).
Process fixtures (real predictor, receiver, market store) are the facade suite's, reused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from callback.main import create_app as create_receiver
from callback.settings import CallbackSettings
from facade.main import create_app as create_facade
from facade.settings import FacadeSettings
from predictor.model import ForecastModel
from tests.facade.conftest import (  # noqa: F401  (fixtures, re-exported for this directory)
    API_TOKEN,
    RELOAD_TOKEN,
    SECRET,
    market_uri,
    predictor,
)
from tests.fixtures.registry import RegisteredModel
from tests.predictor.conftest import windows  # noqa: F401  (fixture)
from tests.predictor.inprocess import serve_in_process

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class LoopbackOnly(httpx.AsyncBaseTransport):
    """Sends requests to loopback through a real transport; fails the test on any other host.

    Every host a request was aimed at is recorded, so a test can also check that nothing was
    attempted even where the failure could have been swallowed.
    """

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.attempted: list[str] = []
        self.off_loopback: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempted.append(str(request.url))
        if request.url.host not in LOOPBACK_HOSTS:
            self.off_loopback.append(str(request.url))
            pytest.fail(f"a request was aimed off loopback: {request.method} {request.url}")
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class InProcessFacade:
    client: httpx.AsyncClient
    app: FastAPI
    settings: FacadeSettings
    transport: LoopbackOnly

    def jobs_stored(self) -> int:
        with sqlite3.connect(self.settings.jobs_db_path) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])


@asynccontextmanager
async def in_process_facade(settings: FacadeSettings) -> AsyncIterator[InProcessFacade]:
    """The facade app with its lifespan run; outbound calls held to loopback."""
    transport = LoopbackOnly()
    outbound = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(10.0, connect=2.0))
    app = create_facade(settings, http_client=outbound)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://facade", timeout=60.0
            ) as client,
        ):
            yield InProcessFacade(client, app, settings, transport)
    finally:
        await outbound.aclose()


def facade_settings(
    state: Path, registered: RegisteredModel, market: str, predictor_url: str, **overrides: Any
) -> FacadeSettings:
    values: dict[str, Any] = {
        "state_dir": state,
        "mlflow_tracking_uri": registered.tracking_uri,
        "model_name": registered.name,
        "market_data_uri": market,
        "predictor_url": predictor_url,
        "callback_secret": SECRET,
        "api_token": API_TOKEN,
        "reload_token": RELOAD_TOKEN,
    }
    values.update(overrides)
    return FacadeSettings(**values)


@dataclass
class InProcessReceiver:
    client: httpx.AsyncClient
    app: FastAPI

    def stored(self) -> int:
        return self.app.state.store.count()


@asynccontextmanager
async def in_process_receiver(state: Path, **overrides: Any) -> AsyncIterator[InProcessReceiver]:
    settings = CallbackSettings(state_dir=state, callback_secret=SECRET, **overrides)
    app = create_receiver(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://receiver") as client,
    ):
        yield InProcessReceiver(client, app)


@dataclass
class InProcessPredictor:
    client: httpx.AsyncClient
    model: ForecastModel
    app: FastAPI


@asynccontextmanager
async def in_process_predictor(
    registered: RegisteredModel, state: Path, **overrides: Any
) -> AsyncIterator[InProcessPredictor]:
    """KServe's REST app serving ``registered`` (loaded), in-process."""
    with pytest.MonkeyPatch.context() as mp:
        model, app = serve_in_process(registered, state, mp, **overrides)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://predictor", timeout=60.0
        ) as client:
            yield InProcessPredictor(client, model, app)
