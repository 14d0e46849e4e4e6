"""Real processes for the facade's tests: the predictor, the callback receiver and the facade itself.

Market data goes into a local Parquet store under tmp (MARKET_DATA_URI); the registry is the
session's MLflow with the shared `btc-lstm` model (`registered`), whose aliases no test moves.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from btcforecast.devservers import components
from btcforecast.devservers.process import ManagedProcess, free_port
from btcforecast.market import LocalParquetStore
from tests.fixtures.registry import RegisteredModel

SECRET = "test-callback-secret"
API_TOKEN = "test-api-token"
RELOAD_TOKEN = "test-reload-token"


@pytest.fixture(scope="session")
def market_uri(tmp_path_factory: pytest.TempPathFactory, market_bars: pd.DataFrame) -> str:
    path = tmp_path_factory.mktemp("market") / "btc_usd_1h.parquet"
    LocalParquetStore(path).write(market_bars)
    return str(path)


@pytest.fixture(scope="session")
def predictor(
    tmp_path_factory: pytest.TempPathFactory, registered: RegisteredModel
) -> Iterator[ManagedProcess]:
    """`python -m predictor` serving `btc-lstm` production on a free loopback port."""
    state = tmp_path_factory.mktemp("predictor-state")
    port = free_port()
    env = {
        "MLFLOW_TRACKING_URI": registered.tracking_uri,
        "MODEL_NAME": registered.name,
        "MODEL_ALIAS": "production",
        "STATE_DIR": str(state),
        "RELOAD_TOKEN": RELOAD_TOKEN,
    }
    proc = components.predictor_process(port, env, state / "predictor.log", ready_path="/v2/health/live")
    with proc:
        wait_until(lambda: httpx.get(f"{proc.url}/v2/health/ready").status_code == 200, 90, proc.log_tail)
        yield proc


def receiver_process(state: Path, port: int | None = None, secret: str = SECRET) -> ManagedProcess:
    env = {"CALLBACK_SECRET": secret, "STATE_DIR": str(state), "MAX_SKEW_SECONDS": "300"}
    return components.receiver_process(port or free_port(), env, state / "callback.log")


@pytest.fixture(scope="session")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    """`python -m callback` with the test secret."""
    with receiver_process(tmp_path_factory.mktemp("receiver")) as proc:
        yield proc


def facade_env(
    *, registered: RegisteredModel, predictor_url: str, market_uri: str, state: Path, **extra: str
) -> dict[str, str]:
    env = {
        "MLFLOW_TRACKING_URI": registered.tracking_uri,
        "MODEL_NAME": registered.name,
        "PREDICTOR_URL": predictor_url,
        "MARKET_DATA_URI": market_uri,
        "STATE_DIR": str(state),
        "CALLBACK_SECRET": SECRET,
        "API_TOKEN": API_TOKEN,
        "RELOAD_TOKEN": RELOAD_TOKEN,
        "CALLBACK_RETRIES": "60",
        "CALLBACK_BACKOFF": "0.1",
        "CALLBACK_BACKOFF_MAX": "0.5",
    }
    env.update(extra)
    return env


def facade_process(env: dict[str, str], state: Path, port: int | None = None) -> ManagedProcess:
    return components.facade_process(port or free_port(), env, state / "facade.log")


@pytest.fixture(scope="session")
def facade(
    tmp_path_factory: pytest.TempPathFactory,
    registered: RegisteredModel,
    predictor: ManagedProcess,
    market_uri: str,
) -> Iterator[ManagedProcess]:
    """`python -m facade` wired to the real predictor, MLflow and market store."""
    state = tmp_path_factory.mktemp("facade")
    env = facade_env(registered=registered, predictor_url=predictor.url, market_uri=market_uri, state=state)
    with facade_process(env, state) as proc:
        yield proc


@pytest.fixture
def api(facade: ManagedProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=facade.url, timeout=60, trust_env=False) as client:
        yield client


def wait_until(check: Callable[[], bool], timeout: float, why: Callable[[], str] = lambda: "") -> None:
    """Poll ``check`` until it holds; fail with ``why()`` after ``timeout`` s (a wait, not a timing check)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s\n{why()}")
        time.sleep(0.1)


os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
