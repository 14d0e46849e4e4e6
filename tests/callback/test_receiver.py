"""The callback receiver: signatures, freshness, size, idempotence, durability across restarts."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from btcforecast.signing import SIGNATURE_HEADER, sign
from callback.main import create_app
from callback.settings import CallbackSettings
from tests.facade.conftest import receiver_process

SECRET = "receiver-secret"


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(CallbackSettings(state_dir=tmp_path, callback_secret=SECRET, max_body_bytes=10_000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://receiver") as client,
    ):
        yield client


def signed(
    payload: dict[str, object], secret: str = SECRET, timestamp: int | None = None
) -> dict[str, object]:
    body = json.dumps(payload).encode()
    return {"content": body, "headers": {SIGNATURE_HEADER: sign(secret, body, timestamp)}}


async def test_a_signed_result_is_stored_and_listed(receiver: httpx.AsyncClient) -> None:
    response = await receiver.post("/result", **signed({"job_id": "j1", "status": "succeeded"}))
    assert response.json() == {"status": "stored", "job_id": "j1"}
    assert (await receiver.get("/results/j1")).json()["payload"]["status"] == "succeeded"
    assert [r["job_id"] for r in (await receiver.get("/results")).json()["results"]] == ["j1"]


async def test_a_second_delivery_of_a_job_is_a_duplicate_that_changes_nothing(
    receiver: httpx.AsyncClient,
) -> None:
    await receiver.post("/result", **signed({"job_id": "j1", "n": 1}))
    again = await receiver.post("/result", **signed({"job_id": "j1", "n": 2}))
    assert again.json()["status"] == "duplicate"
    assert (await receiver.get("/results/j1")).json()["payload"]["n"] == 1


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({}, "missing"),
        ({SIGNATURE_HEADER: "garbage"}, "key=value"),
        ({SIGNATURE_HEADER: "t=1,v1=00"}, "stale"),
        ({SIGNATURE_HEADER: "t={now},v1=00"}, "does not match"),
    ],
)
async def test_bad_signatures_are_401_and_store_nothing(
    receiver: httpx.AsyncClient, headers: dict[str, str], problem: str
) -> None:
    headers = {k: v.format(now=int(time.time())) for k, v in headers.items()}
    response = await receiver.post("/result", content=b'{"job_id": "x"}', headers=headers)
    assert response.status_code == 401 and problem in response.json()["detail"]
    assert (await receiver.get("/results/x")).status_code == 404


async def test_a_signature_with_the_wrong_secret_is_401(receiver: httpx.AsyncClient) -> None:
    assert (await receiver.post("/result", **signed({"job_id": "x"}, secret="other"))).status_code == 401


async def test_a_stale_but_correctly_signed_result_is_401(receiver: httpx.AsyncClient) -> None:
    old = int(time.time()) - 3600
    response = await receiver.post("/result", **signed({"job_id": "x"}, timestamp=old))
    assert response.status_code == 401 and "stale" in response.json()["detail"]


async def test_an_oversized_body_is_413(receiver: httpx.AsyncClient) -> None:
    response = await receiver.post("/result", **signed({"job_id": "big", "pad": "x" * 20_000}))
    assert response.status_code == 413


@pytest.mark.parametrize("payload", [[1, 2], {"no": "job"}, {"job_id": 5}, {"job_id": ""}])
async def test_a_body_without_a_job_id_is_400(receiver: httpx.AsyncClient, payload: object) -> None:
    body = json.dumps(payload).encode()
    response = await receiver.post("/result", content=body, headers={SIGNATURE_HEADER: sign(SECRET, body)})
    assert response.status_code == 400


async def test_unknown_result_is_404(receiver: httpx.AsyncClient) -> None:
    assert (await receiver.get("/results/none")).status_code == 404


def test_results_survive_a_receiver_restart(tmp_path: Path) -> None:
    proc = receiver_process(tmp_path, secret=SECRET)
    with proc:
        body = json.dumps({"job_id": "durable"}).encode()
        headers = {SIGNATURE_HEADER: sign(SECRET, body)}
        assert httpx.post(f"{proc.url}/result", content=body, headers=headers).status_code == 200
        proc.kill()
        proc.start()
        assert httpx.get(f"{proc.url}/results/durable").status_code == 200


async def _counters(receiver: httpx.AsyncClient) -> dict[tuple[str, str], float]:
    response = await receiver.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, next(iter(sample.labels.values()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name.startswith("btcf_callback_") and sample.name.endswith("_total")
    }


async def test_metrics_count_results_stored_and_duplicate(receiver: httpx.AsyncClient) -> None:
    await receiver.post("/result", **signed({"job_id": "m1"}))
    await receiver.post("/result", **signed({"job_id": "m1"}))
    await receiver.post("/result", **signed({"job_id": "m2"}))
    counters = await _counters(receiver)
    assert counters[("btcf_callback_results_received_total", "stored")] == 2
    assert counters[("btcf_callback_results_received_total", "duplicate")] == 1


async def test_metrics_count_refusals_by_reason(receiver: httpx.AsyncClient) -> None:
    await receiver.post("/result", **signed({"job_id": "x"}, secret="other"))
    await receiver.post("/result", **signed({"job_id": "big", "pad": "x" * 20_000}))
    body = b"[1, 2]"
    await receiver.post("/result", content=body, headers={SIGNATURE_HEADER: sign(SECRET, body)})
    counters = await _counters(receiver)
    assert counters[("btcf_callback_results_refused_total", "bad_signature")] == 1
    assert counters[("btcf_callback_results_refused_total", "too_large")] == 1
    assert counters[("btcf_callback_results_refused_total", "invalid")] == 1
    assert counters[("btcf_callback_results_received_total", "stored")] == 0
