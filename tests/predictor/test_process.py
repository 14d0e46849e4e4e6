"""`python -m predictor` over a real port: not ready while MLflow is down, ready once it is up."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import httpx

from btcforecast import registry
from btcforecast.devservers.components import predictor_process
from btcforecast.devservers.mlflow_server import mlflow_server
from btcforecast.devservers.process import free_port
from tests.predictor.conftest import binary_outputs, v2_binary

ROOT = Path(__file__).resolve().parents[2]


def wait_for(check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_predictor_waits_for_mlflow_then_serves_and_survives_mlflow_going_away(
    tmp_path, trained_models, windows
):
    mlflow = mlflow_server(tmp_path / "mlflow", port=free_port())
    with mlflow:
        client = registry.connect(mlflow.url)
        version = registry.register(client, "btc-lstm", trained_models[date(2025, 7, 24)], alias="production")
    port = free_port()
    env = {
        "MLFLOW_TRACKING_URI": mlflow.url,
        "MODEL_NAME": "btc-lstm",
        "STATE_DIR": str(tmp_path / "predictor-state"),
        "LOAD_RETRY_INITIAL": "0.5",
        "LOAD_RETRY_MAX": "1",
    }
    predictor = predictor_process(
        port, env, tmp_path / "predictor.log", ready_path="/v2/health/live", cwd=ROOT
    )
    with predictor, httpx.Client(base_url=predictor.url, timeout=30.0, trust_env=False) as http:
        assert http.get("/v2/health/live").status_code == 200
        wait_for(lambda: http.get("/v2/models/btc-lstm/serving").json()["load_error"] is not None)
        assert http.get("/v2/health/ready").status_code == 503

        mlflow.start()  # same port, same state
        wait_for(lambda: http.get("/v2/health/ready").status_code == 200)
        content, headers = v2_binary(windows, binary_output=True)
        response = http.post("/v2/models/btc-lstm/infer", content=content, headers=headers)
        assert response.status_code == 200
        json_length = int(response.headers["inference-header-content-length"])
        assert b'"model_version":"%s"' % version.encode() in response.content[:json_length]
        assert {name: len(v) for name, v in binary_outputs(response).items()} == {
            "close": len(windows),
            "close_p10": len(windows),
            "close_p90": len(windows),
        }

        mlflow.stop()
        failed = http.post("/v2/models/btc-lstm/reload", params={"alias": "production"})
        assert failed.status_code == 503
        assert "MLflow" in failed.json()["error"]
        still = http.post("/v2/models/btc-lstm/infer", content=content, headers=headers)
        assert still.status_code == 200
        assert (
            'btcf_predictor_reload_failures_total{model="btc-lstm",reason="RegistryUnavailable"}'
            in http.get("/metrics").text
        )
