"""The facade's MLflow webhook: a real MLflow server's alias move invalidates the alias cache.

The facade here caches aliases for an hour (ALIAS_CACHE_SECONDS), so a move seen at once through
GET /aliases can only have come through the webhook.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from btcforecast import registry
from btcforecast.devservers.process import ManagedProcess, free_port
from btcforecast.mlflow_webhooks import sign
from tests.facade.conftest import facade_env, facade_process, wait_until
from tests.fixtures.registry import RegisteredModel

WEBHOOK_SECRET = "facade-webhook-secret"


@pytest.fixture
def model(register_models: Callable[..., RegisteredModel]) -> RegisteredModel:
    return register_models()


def start_facade(model: RegisteredModel, state: Path, *, register: bool) -> ManagedProcess:
    """A facade caching aliases for an hour, taking signed webhooks (and registering its own if asked)."""
    port = free_port()
    hook = {"MLFLOW_WEBHOOK_URL": f"http://127.0.0.1:{port}/mlflow-webhook"} if register else {}
    env = facade_env(
        registered=model,
        predictor_url="http://127.0.0.1:9",
        market_uri=str(state / "none.parquet"),
        state=state,
        ALIAS_CACHE_SECONDS="3600",
        MLFLOW_WEBHOOK_SECRET=WEBHOOK_SECRET,
        WEBHOOK_NAME=f"facade-{port}",
        **hook,
    )
    return facade_process(env, state, port)


@pytest.fixture
def hooked_facade(model: RegisteredModel, tmp_path: Path) -> Iterator[httpx.Client]:
    with start_facade(model, tmp_path, register=True) as proc, httpx.Client(base_url=proc.url) as api:
        yield api


@pytest.fixture
def unregistered_facade(model: RegisteredModel, tmp_path: Path) -> Iterator[httpx.Client]:
    with start_facade(model, tmp_path, register=False) as proc, httpx.Client(base_url=proc.url) as api:
        yield api


def staging(api: httpx.Client) -> str:
    return api.get("/aliases").json()["versions"]["staging"]


def test_an_alias_moved_in_mlflow_reaches_the_facade_through_the_webhook(
    hooked_facade: httpx.Client, model: RegisteredModel
) -> None:
    assert staging(hooked_facade) == model.version_of("staging")  # now cached for an hour
    moved = model.version_of("backtest_20250403")
    client = registry.connect(model.tracking_uri)

    def moved_seen() -> bool:
        registry.set_alias(client, model.name, "staging", moved)  # again, past MLflow's webhook-list cache
        return staging(hooked_facade) == moved

    wait_until(moved_seen, 120, lambda: "the facade still serves the old version")


def test_a_delivery_with_a_bad_signature_is_refused_and_the_cache_kept(
    unregistered_facade: httpx.Client, model: RegisteredModel
) -> None:
    first = staging(unregistered_facade)
    moved = model.version_of("backtest_20250403")
    registry.set_alias(registry.connect(model.tracking_uri), model.name, "staging", moved)  # unannounced
    data = {"name": model.name, "alias": "staging", "version": moved}
    body = json.dumps({"entity": "model_version_alias", "action": "created", "data": data}).encode()
    stamp = str(int(time.time()))
    forged = {
        "X-MLflow-Delivery-Id": "d-1",
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": sign("not-the-secret", "d-1", stamp, body),
    }

    response = unregistered_facade.post("/mlflow-webhook", content=body, headers=forged)

    assert response.status_code == 401
    assert staging(unregistered_facade) == first


def test_the_same_delivery_signed_with_the_secret_invalidates_the_alias(
    unregistered_facade: httpx.Client, model: RegisteredModel
) -> None:
    staging(unregistered_facade)
    moved = model.version_of("backtest_20250403")
    registry.set_alias(registry.connect(model.tracking_uri), model.name, "staging", moved)
    data = {"name": model.name, "alias": "staging", "version": moved}
    body = json.dumps({"entity": "model_version_alias", "action": "created", "data": data}).encode()
    stamp = str(int(time.time()))
    signed = {
        "X-MLflow-Delivery-Id": "d-2",
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": sign(WEBHOOK_SECRET, "d-2", stamp, body),
    }

    response = unregistered_facade.post("/mlflow-webhook", content=body, headers=signed)

    assert (response.status_code, response.json()) == (200, {"invalidated": True})
    assert staging(unregistered_facade) == moved
