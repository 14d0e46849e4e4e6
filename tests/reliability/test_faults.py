"""Killed dependencies: real processes stopped and started again on the same port, with the same state.

One stack per module (its own MLflow, predictor and facade processes, so stopping them disturbs no
other test): MLflow stopped, the predictor stopped, the callback receiver killed mid-delivery, and a
facade reading market data from a real S3 server (SeaweedFS) that is stopped. Each test leaves the
stack running as it found it. Facade SIGKILL with pending callbacks and an operator killed
mid-rollout are proven elsewhere (see docs/reliability.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pandas as pd
import pytest

from btcforecast import registry
from btcforecast.alias_names import backtest_alias
from btcforecast.devservers import components
from btcforecast.devservers.mlflow_server import mlflow_server
from btcforecast.devservers.process import ManagedProcess, free_port
from btcforecast.devservers.seaweedfs import seaweedfs
from btcforecast.market import open_store
from btcforecast.training import TrainedModel
from tests.facade.conftest import (
    API_TOKEN,
    RELOAD_TOKEN,
    facade_env,
    facade_process,
    receiver_process,
    wait_until,
)
from tests.fixtures.registry import RegisteredModel

pytestmark = pytest.mark.timeout(300)

FAST_FAIL = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
DAY = {"alias": "20250327", "start": "2025-04-10", "end": "2025-04-10"}


@dataclass
class Stack:
    mlflow: ManagedProcess
    predictor: ManagedProcess
    facade: ManagedProcess
    model: RegisteredModel
    market_uri: str
    state: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.facade.url, timeout=60, trust_env=False)


def predictor_process(model: RegisteredModel, state: Path) -> ManagedProcess:
    port = free_port()
    env = {
        "MLFLOW_TRACKING_URI": model.tracking_uri,
        "MODEL_NAME": model.name,
        "MODEL_ALIAS": "production",
        "STATE_DIR": str(state),
        "RELOAD_TOKEN": RELOAD_TOKEN,
        "LOAD_RETRY_INITIAL": "0.5",
        "LOAD_RETRY_MAX": "1",
        **FAST_FAIL,
    }
    log = state / "predictor.log"
    return components.predictor_process(port, env, log, ready_path="/v2/health/live", ready_timeout=90)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    trained_models: dict[date, TrainedModel],
    market_uri: str,
) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("faults")
    ml = mlflow_server(state / "mlflow")
    with ml:
        client = registry.connect(ml.url)
        model = RegisteredModel(tracking_uri=ml.url, name="btc-lstm")
        for day in (date(2025, 3, 27), date(2025, 4, 3)):
            alias = backtest_alias(day)
            model.aliases[alias] = registry.register(client, model.name, trained_models[day], alias=alias)
        model.aliases["production"] = model.aliases["backtest_20250403"]
        registry.set_alias(client, model.name, "production", model.aliases["production"])
        pred = predictor_process(model, state / "predictor")
        with pred:
            wait_until(lambda: httpx.get(f"{pred.url}/v2/health/ready").status_code == 200, 90, pred.log_tail)
            env = facade_env(
                registered=model,
                predictor_url=pred.url,
                market_uri=market_uri,
                state=state / "facade",
                RESULT_CACHE_SIZE="0",  # every forecast goes to the predictor: nothing masks a fault
                ALIAS_CACHE_SECONDS="0",  # every alias question goes to MLflow, for the same reason
                **FAST_FAIL,
            )
            with facade_process(env, state / "facade") as fac:
                yield Stack(ml, pred, fac, model, market_uri, state)


def detail(response: httpx.Response) -> str:
    return str(response.json().get("detail"))


def test_mlflow_stopped_predictions_are_still_served_and_everything_recovers_after_its_restart(
    stack: Stack,
) -> None:
    with stack.client() as api:
        before = api.post("/predict", json=DAY)
        assert before.status_code == 200, before.text
        stack.mlflow.stop()
        try:
            during = api.post("/predict", json=DAY)
            assert during.status_code == 200, during.text  # the version already loaded keeps serving
            assert during.json()["predictions"] == before.json()["predictions"]
            health = api.get("/health")
            assert health.status_code == 200
            assert (health.json()["status"], health.json()["mlflow"]) == ("degraded", "unavailable")
            aliases = api.get("/aliases")
            assert aliases.status_code == 503 and "MLflow" in detail(aliases)
            reload = api.post("/reload", params={"alias": "20250327"}, headers=AUTH)
            assert reload.status_code == 503 and "MLflow" in detail(reload)
        finally:
            stack.mlflow.start()  # same port, same sqlite and artifacts

        wait_until(lambda: api.get("/health").json()["status"] == "ok", 60, stack.facade.log_tail)
        assert (
            api.get("/aliases").json()["versions"]["backtest_20250403"]
            == stack.model.aliases["backtest_20250403"]
        )
        reload = api.post("/reload", params={"alias": "production"}, headers=AUTH)
        assert (
            reload.status_code == 200 and reload.json()["model_version"] == stack.model.aliases["production"]
        )
        never_seen = api.post("/predict", json={**DAY, "alias": "20250403"})  # resolved only now
        assert never_seen.status_code == 200
        assert never_seen.json()["model_version"] == stack.model.aliases["backtest_20250403"]


def test_predictor_stopped_is_a_503_with_a_message_and_recovers_when_it_returns_on_its_port(
    stack: Stack,
) -> None:
    with stack.client() as api:
        assert api.post("/predict", json=DAY).status_code == 200
        stack.predictor.stop()
        try:
            down = api.post("/predict", json=DAY)
            assert down.status_code == 503 and "predictor" in detail(down)
            health = api.get("/health")
            assert health.status_code == 200
            assert (health.json()["status"], health.json()["predictor"]) == ("degraded", "unavailable")
        finally:
            stack.predictor.start()  # same port

        wait_until(lambda: api.post("/predict", json=DAY).status_code == 200, 90, stack.predictor.log_tail)
        assert api.get("/health").json()["predictor"] == "ok"


def test_a_receiver_killed_mid_delivery_gets_every_accepted_result_exactly_once_after_restart(
    stack: Stack, tmp_path: Path
) -> None:
    port = free_port()
    receiver = receiver_process(tmp_path, port)
    url = f"http://127.0.0.1:{port}/result"
    days = [f"2025-04-{d:02d}" for d in range(10, 16)]
    with stack.client() as api, receiver:

        def submit(day: str) -> str:
            response = api.post("/predict", json={**DAY, "start": day, "end": day, "callback_url": url})
            assert response.status_code == 202, response.text
            return response.json()["job_id"]

        def status(job_id: str) -> dict:
            return api.get(f"/jobs/{job_id}").json()

        first = [submit(day) for day in days[:3]]
        wait_until(lambda: any(status(j)["status"] == "delivered" for j in first), 60)
        receiver.kill()
        second = [submit(day) for day in days[3:]]
        wait_until(lambda: all(status(j)["attempts"] >= 1 for j in second), 60)
        assert all(status(j)["status"] == "pending" for j in second)  # accepted, not lost, waiting

        receiver.start()  # same port, same database
        jobs = first + second
        wait_until(lambda: all(status(j)["status"] == "delivered" for j in jobs), 90, stack.facade.log_tail)
        stored = httpx.get(f"http://127.0.0.1:{port}/results", params={"limit": 1000}).json()
        assert sorted(r["job_id"] for r in stored["results"]) == sorted(jobs)  # each once, none lost
        for job_id in jobs:
            assert httpx.get(f"http://127.0.0.1:{port}/results/{job_id}").json()["payload"]["status"] == (
                "succeeded"
            )


def test_s3_stopped_makes_data_reads_503_and_they_recover_after_its_restart(
    stack: Stack, market_bars: pd.DataFrame, tmp_path: Path
) -> None:
    s3 = seaweedfs(tmp_path / "s3")
    uri = f"s3://{s3.bucket}/btc_usd_1h.parquet"
    with s3:
        open_store(s3.settings(market_data_uri=uri)).write(market_bars)
        env = facade_env(
            registered=stack.model,
            predictor_url=stack.predictor.url,
            market_uri=uri,
            state=tmp_path / "facade",
            S3_ENDPOINT_URL=s3.endpoint_url,
            AWS_ACCESS_KEY_ID=s3.access_key,
            AWS_SECRET_ACCESS_KEY=s3.secret_key,
            RESULT_CACHE_SIZE="0",
            **FAST_FAIL,
        )
        info = {"start": "2025-05-01", "end": "2025-05-01"}
        with (
            facade_process(env, tmp_path / "facade") as fac,
            httpx.Client(base_url=fac.url, timeout=60) as api,
        ):
            assert api.get("/btc-info", params=info).status_code == 200
            assert api.post("/predict", json=DAY).status_code == 200
            s3.stop()
            try:
                wait_until(lambda: api.get("/btc-info", params=info).status_code == 503, 30, fac.log_tail)
                assert "S3" in detail(api.get("/btc-info", params=info))
                predict = api.post("/predict", json=DAY)
                assert predict.status_code == 503 and "S3" in detail(predict)
                health = api.get("/health")
                assert health.status_code == 200 and health.json()["market_data"] == "unavailable"
            finally:
                s3.start()  # same ports, same data directory

            wait_until(lambda: api.get("/btc-info", params=info).status_code == 200, 60, fac.log_tail)
            assert api.post("/predict", json=DAY).status_code == 200
            assert api.get("/health").json()["market_data"] == "ok"
