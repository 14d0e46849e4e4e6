"""Asynchronous predictions: signed delivery, retries until the receiver is back, survival of restarts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from btcforecast.devservers.process import ManagedProcess, free_port
from btcforecast.signing import sign
from facade.callbacks import post_callback
from tests.facade.conftest import SECRET, facade_env, facade_process, receiver_process, wait_until
from tests.fixtures.registry import RegisteredModel


def result_of(receiver: ManagedProcess, job_id: str) -> httpx.Response:
    return httpx.get(f"{receiver.url}/results/{job_id}", timeout=10)


def test_a_callback_prediction_is_accepted_then_delivered_signed(
    api: httpx.Client, receiver: ManagedProcess
) -> None:
    accepted = api.post("/predict", params={"alias": "20250327", "callback_url": f"{receiver.url}/result"})
    assert accepted.status_code == 202
    job_id = accepted.json()["job_id"]
    wait_until(lambda: api.get(f"/jobs/{job_id}").json()["status"] == "delivered", 60)
    stored = result_of(receiver, job_id).json()
    assert stored["signed_at"] is not None  # the receiver requires and verified the signature
    assert stored["payload"]["status"] == "succeeded"
    assert stored["payload"]["result"]["start_date"] == "2025-03-27 00:00:00"
    job = api.get(f"/jobs/{job_id}").json()
    assert job["attempts"] == 1 and job["outcome"] == "succeeded"


def test_a_callback_result_is_the_synchronous_answer_intervals_and_report_included(
    api: httpx.Client, receiver: ManagedProcess
) -> None:
    params = {"alias": "20250403", "end": "2025-04-10"}
    accepted = api.post("/predict", params={**params, "callback_url": f"{receiver.url}/result"})
    job_id = accepted.json()["job_id"]
    wait_until(lambda: api.get(f"/jobs/{job_id}").json()["status"] == "delivered", 60)
    result = result_of(receiver, job_id).json()["payload"]["result"]
    assert result == api.post("/predict", params=params).json()
    assert all(p["lower"] <= p["prediction"] <= p["upper"] for p in result["predictions"])
    assert result["metrics"]["overall"]["interval"]["level"] == pytest.approx(0.8)


def test_champion_callback_via_json_body(api: httpx.Client, receiver: ManagedProcess) -> None:
    accepted = api.post("/predict-champion", json={"callback_url": f"{receiver.url}/result"})
    assert accepted.status_code == 202
    job_id = accepted.json()["job_id"]
    wait_until(lambda: api.get(f"/jobs/{job_id}").json()["status"] == "delivered", 60)
    assert result_of(receiver, job_id).json()["payload"]["kind"] == "predict-champion"


def test_a_callback_for_an_unknown_alias_is_refused_before_acceptance(
    api: httpx.Client, receiver: ManagedProcess
) -> None:
    response = api.post("/predict", params={"alias": "nosuch", "callback_url": f"{receiver.url}/result"})
    assert response.status_code == 404


def test_delivery_waits_for_a_receiver_that_is_down_then_up(api: httpx.Client, tmp_path: Path) -> None:
    port = free_port()
    late = receiver_process(tmp_path, port)
    accepted = api.post(
        "/predict", params={"alias": "20250403", "callback_url": f"http://127.0.0.1:{port}/result"}
    )
    job_id = accepted.json()["job_id"]
    wait_until(lambda: api.get(f"/jobs/{job_id}").json()["attempts"] >= 2, 60)
    assert api.get(f"/jobs/{job_id}").json()["status"] == "pending"
    with late:
        wait_until(lambda: api.get(f"/jobs/{job_id}").json()["status"] == "delivered", 60)
        assert result_of(late, job_id).status_code == 200


def test_a_pending_callback_survives_a_facade_restart(
    tmp_path: Path, registered: RegisteredModel, predictor: ManagedProcess, market_uri: str
) -> None:
    port = free_port()
    late = receiver_process(tmp_path / "receiver", port)
    env = facade_env(
        registered=registered, predictor_url=predictor.url, market_uri=market_uri, state=tmp_path
    )
    facade = facade_process(env, tmp_path)
    with facade:
        client = httpx.Client(base_url=facade.url, timeout=60)
        job_id = client.post(
            "/predict", params={"alias": "20250327", "callback_url": f"http://127.0.0.1:{port}/result"}
        ).json()["job_id"]
        wait_until(lambda: client.get(f"/jobs/{job_id}").json()["attempts"] >= 1, 60)
        facade.kill()  # a crash: no graceful shutdown
        with late:
            facade.start()
            wait_until(
                lambda: client.get(f"/jobs/{job_id}").json()["status"] == "delivered", 60, facade.log_tail
            )
            assert result_of(late, job_id).json()["payload"]["status"] == "succeeded"
        client.close()


async def test_the_receiver_rejects_a_bad_signature(receiver: ManagedProcess) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        delivery = await post_callback(
            f"{receiver.url}/result", {"job_id": "forged"}, client=client, secret="not-the-secret", retries=3
        )
    assert not delivery.delivered
    assert delivery.status_code == 401 and delivery.attempts == 1  # refused, and not retried
    assert result_of(receiver, "forged").status_code == 404


async def test_post_callback_signs_with_the_shared_secret(receiver: ManagedProcess) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        delivery = await post_callback(
            f"{receiver.url}/result", {"job_id": "direct-1"}, client=client, secret=SECRET
        )
    assert delivery.delivered and delivery.attempts == 1
    assert sign(SECRET, b"x", 1).startswith("t=1,v1=")


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_post_callback_retries_transient_failures(status: int) -> None:
    answers = iter([status, status, 200])
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(next(answers))

    async def no_sleep(_: float) -> None:
        return None

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        delivery = await post_callback(
            "http://127.0.0.1:1/result", {"job_id": "j"}, client=client, secret="s", retries=5, sleep=no_sleep
        )
    assert delivery.delivered and delivery.attempts == 3
    assert all("X-Btcf-Signature" in r.headers for r in seen)
