"""MLflow's tracking server with its backend store in a real PostgreSQL database (the chart's shared
database option): runs, registered versions and aliases live in the database, not in the server."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from mlflow import MlflowClient

from btcforecast.devservers.mlflow_server import backend_store_uri, mlflow_server

pytest_plugins = ["tests.fixtures.postgres"]
pytestmark = pytest.mark.timeout(600)


def test_a_postgres_url_reaches_mlflow_through_psycopg_3() -> None:
    assert backend_store_uri("postgresql://u:p@db:5432/mlflow") == "postgresql+psycopg://u:p@db:5432/mlflow"
    assert backend_store_uri("postgresql+psycopg://u:p@db/m") == "postgresql+psycopg://u:p@db/m"


def test_the_registry_lives_in_postgres_and_outlives_the_server(database_url: str, tmp_path: Path) -> None:
    # start-up deadlines, not timed assertions: MLflow creates its schema on first start
    with mlflow_server(tmp_path / "first", ready_timeout=300, backend_store=database_url) as server:
        client = MlflowClient(server.url)
        experiment = client.create_experiment("pg")
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "rmse", 1.5)
        client.create_registered_model("btc-lstm-pg")
        version = client.create_model_version(
            "btc-lstm-pg", f"runs:/{run.info.run_id}/model", run.info.run_id
        )
        client.set_registered_model_alias("btc-lstm-pg", "production", version.version)

    with psycopg.connect(database_url) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM registered_models").fetchall()]
    assert names == ["btc-lstm-pg"]
    assert not (tmp_path / "first" / "mlflow.db").exists()

    with mlflow_server(tmp_path / "second", ready_timeout=300, backend_store=database_url) as server:
        client = MlflowClient(server.url)
        assert client.get_model_version_by_alias("btc-lstm-pg", "production").version == version.version
        assert client.get_run(run.info.run_id).data.metrics == {"rmse": 1.5}
