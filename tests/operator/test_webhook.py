"""btcf_operator.webhook: a verified alias event wakes the followers of that alias, and only those."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from btcf_operator.step import ObjectState
from btcf_operator.webhook import WEBHOOK_PATH, AliasIndex, deliver, serve, webhook_app

from btcforecast.devservers.process import free_port
from btcforecast.mlflow_webhooks import SignatureError, sign

SECRET = "operator-webhook-secret"


def alias_event(model: str, alias: str, version: str = "3") -> bytes:
    data = {"name": model, "alias": alias, "version": version}
    return json.dumps({"entity": "model_version_alias", "action": "created", "data": data}).encode()


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {
        "X-MLflow-Delivery-Id": "d-1",
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": sign(secret, "d-1", timestamp, body),
    }


def index_of(**followed: tuple[str, str]) -> tuple[AliasIndex, dict[str, ObjectState]]:
    index, states = AliasIndex(), {}
    for name, (model, alias) in followed.items():
        states[name] = ObjectState(next_poll=1e12)
        index.update(("ns", name), {"registeredModel": model, "alias": alias}, states[name])
    return index, states


async def test_a_verified_alias_event_wakes_only_the_resources_following_that_alias() -> None:
    index, states = index_of(
        prod=("btc", "production"), stage=("btc", "staging"), other=("eth", "production")
    )
    body = alias_event("btc", "production")

    assert deliver(SECRET, signed(body), body, index) == [("ns", "prod")]
    assert [n for n, s in states.items() if s.woken.is_set()] == ["prod"]


async def test_a_bad_signature_is_refused_and_wakes_nothing() -> None:
    index, states = index_of(prod=("btc", "production"))
    body = alias_event("btc", "production")

    with pytest.raises(SignatureError):
        deliver(SECRET, signed(body, secret="forged"), body, index)
    assert not states["prod"].woken.is_set()
    assert states["prod"].next_poll == 1e12


async def test_a_deleted_resource_is_no_longer_woken() -> None:
    index, _ = index_of(prod=("btc", "production"))
    index.remove(("ns", "prod"))
    body = alias_event("btc", "production")

    assert deliver(SECRET, signed(body), body, index) == []


async def test_a_wake_up_ends_the_followers_nap_and_makes_the_alias_due() -> None:
    state = ObjectState(next_poll=1e12)
    nap = asyncio.create_task(state.nap(3600))
    await asyncio.sleep(0)
    state.wake()
    await asyncio.wait_for(nap, 30)  # a bound for a broken wake-up, not a timing assertion
    assert state.next_poll == 0.0


async def test_a_wake_up_during_a_step_is_kept_for_the_next_nap() -> None:
    state = ObjectState()
    state.wake()  # arrives while the follower is busy
    state.next_poll = 1e12  # that step then schedules its next poll
    await asyncio.wait_for(state.nap(3600), 30)
    assert state.next_poll == 0.0


@pytest.fixture
async def receiver() -> tuple[str, AliasIndex, dict[str, ObjectState]]:
    index, states = index_of(prod=("btc", "production"))
    port = free_port()
    runner = await serve(webhook_app(SECRET, index), "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}{WEBHOOK_PATH}", index, states
    finally:
        await runner.cleanup()


async def test_the_endpoint_answers_a_verified_delivery_with_what_it_woke(receiver) -> None:
    url, _, states = receiver
    body = alias_event("btc", "production")
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(url, content=body, headers=signed(body))
    assert (response.status_code, response.json()) == (200, {"woken": ["ns/prod"]})
    assert states["prod"].woken.is_set()


async def test_the_endpoint_refuses_a_bad_signature_with_a_401_problem_and_changes_nothing(receiver) -> None:
    url, _, states = receiver
    body = alias_event("btc", "production")
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(url, content=body, headers=signed(body, secret="forged"))
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert not states["prod"].woken.is_set()


async def test_the_endpoint_refuses_an_unsigned_delivery(receiver) -> None:
    url, _, states = receiver
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(url, content=alias_event("btc", "production"))
    assert response.status_code == 401
    assert not states["prod"].woken.is_set()
