"""The facade app in-process with no network: for tests of what it answers before calling anyone.

Its one outbound HTTP client fails the test if anything is ever sent through it; MLflow points at a
closed loopback port and the market data at a file that does not exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from facade.main import create_app
from facade.settings import FacadeSettings


def offline_settings(tmp_path: Path, **overrides: Any) -> FacadeSettings:
    return FacadeSettings(
        **{
            "state_dir": tmp_path,
            "mlflow_tracking_uri": "http://127.0.0.1:9",
            "market_data_uri": str(tmp_path / "none.parquet"),
            **overrides,
        }
    )


@asynccontextmanager
async def offline_facade(settings: FacadeSettings, timeout: float = 30.0) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the app, its lifespan run; the app's outbound client refuses to send."""

    def forbidden(request: httpx.Request) -> httpx.Response:
        pytest.fail(f"the facade sent a request to {request.url}")

    outbound = httpx.AsyncClient(transport=httpx.MockTransport(forbidden))
    app = create_app(settings, http_client=outbound)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://facade", timeout=timeout
            ) as client,
        ):
            yield client
    finally:
        await outbound.aclose()
