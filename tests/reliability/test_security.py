"""Request body limits on every component: an oversized body is refused, never buffered to the end.

A body that announces its size is refused from its Content-Length without reading it; a chunked
body (no Content-Length) is refused as soon as the bytes read pass the limit, which the tests see
by counting how many chunks of the client's stream were ever pulled. Tokens, signatures, the SSRF
allowlist and the chart's security contexts are tested elsewhere (see docs/reliability.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from btcforecast.devservers.process import free_port
from predictor.settings import PredictorSettings
from tests.fixtures.registry import RegisteredModel
from tests.reliability.conftest import (
    LoopbackOnly,
    facade_settings,
    in_process_facade,
    in_process_predictor,
    in_process_receiver,
)

MIB = 1024 * 1024


class Chunks:
    """An async body stream of ``count`` chunks of ``size`` bytes that counts what was pulled."""

    def __init__(self, count: int, size: int = MIB) -> None:
        self.count, self.size, self.pulled = count, size, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.count):
            self.pulled += 1
            yield b"1" * self.size


def test_the_predictor_limits_bodies_by_default_below_50_mb() -> None:
    assert PredictorSettings().max_body_bytes < 50 * MIB


async def test_the_predictor_refuses_a_50_mb_body_from_its_content_length(
    registered: RegisteredModel, tmp_path: Path
) -> None:
    async with in_process_predictor(registered, tmp_path) as predictor:
        response = await predictor.client.post(
            "/v2/models/btc-lstm/infer",
            content=b"1" * (50 * MIB),
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 413
    assert "limit" in response.json()["error"]


async def test_the_predictor_stops_reading_a_chunked_body_once_past_the_limit(
    registered: RegisteredModel, tmp_path: Path
) -> None:
    body = Chunks(50)
    async with in_process_predictor(registered, tmp_path, max_body_bytes=4 * MIB) as predictor:
        response = await predictor.client.post("/v2/models/btc-lstm/infer", content=body)
    assert response.status_code == 413
    assert body.pulled <= 5  # 4 MiB allowed, the 5th chunk passes the limit: nothing more is read


async def test_the_receiver_stops_reading_a_chunked_body_once_past_the_limit(tmp_path: Path) -> None:
    body = Chunks(50)
    async with in_process_receiver(tmp_path, max_body_bytes=2 * MIB) as receiver:
        response = await receiver.client.post("/result", content=body)
        assert receiver.stored() == 0
    assert response.status_code == 413
    assert body.pulled <= 3


async def test_the_facade_stops_reading_a_chunked_body_once_past_the_limit(
    registered: RegisteredModel, market_uri: str, tmp_path: Path
) -> None:
    body = Chunks(50, size=64 * 1024)
    settings = facade_settings(tmp_path, registered, market_uri, f"http://127.0.0.1:{free_port()}")
    async with in_process_facade(settings) as facade:
        response = await facade.client.post(
            "/predict", content=body, headers={"content-type": "application/json"}
        )
        assert facade.jobs_stored() == 0
    assert response.status_code == 413, response.text
    assert body.pulled <= 2  # the limit is 64 KiB


async def test_the_outbound_guard_fails_a_test_that_aims_a_request_off_loopback() -> None:
    """The guard the hostile-input table relies on does catch an off-loopback request."""
    transport = LoopbackOnly()
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(pytest.fail.Exception, match="off loopback"):
            await client.get("http://169.254.169.254/latest/meta-data/")
    assert transport.off_loopback == ["http://169.254.169.254/latest/meta-data/"]
