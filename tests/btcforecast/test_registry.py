"""The MLflow registry functions against a real MLflow server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
import torch

from btcforecast import registry
from btcforecast.devservers.mlflow_server import ARTIFACTS_BUCKET, mlflow_server
from btcforecast.devservers.process import free_port
from btcforecast.market.store import s3_client
from btcforecast.model import CONFIG_FILE, WEIGHTS_FILE
from btcforecast.training import TrainedModel
from tests.fixtures.registry import RegisteredModel


@pytest.fixture
def fresh(register_models: Callable[..., RegisteredModel]) -> RegisteredModel:
    return register_models()


def test_each_registration_is_a_new_version(fresh: RegisteredModel) -> None:
    backtests = [v for a, v in fresh.aliases.items() if a.startswith("backtest_")]
    assert len(set(backtests)) == len(backtests) == 4


def test_aliases_are_listed_with_their_versions(fresh: RegisteredModel) -> None:
    client = registry.connect(fresh.tracking_uri)
    assert registry.list_aliases(client, fresh.name) == fresh.aliases


def test_an_unregistered_model_has_no_aliases(mlflow) -> None:
    assert registry.list_aliases(registry.connect(mlflow.url), "never-registered") == {}


def test_a_bare_date_resolves_to_its_backtest_version(fresh: RegisteredModel) -> None:
    client = registry.connect(fresh.tracking_uri)
    ref = registry.resolve(client, fresh.name, alias="20250327")
    assert ref.alias == "backtest_20250327"
    assert ref.version == fresh.version_of("backtest_20250327")


def test_a_moved_alias_resolves_to_its_new_version(fresh: RegisteredModel) -> None:
    client = registry.connect(fresh.tracking_uri)
    registry.set_alias(client, fresh.name, "staging", fresh.version_of("backtest_20250320"))
    assert registry.resolve(client, fresh.name, alias="staging").version == fresh.version_of(
        "backtest_20250320"
    )


def test_promote_points_an_alias_where_another_points(fresh: RegisteredModel) -> None:
    client = registry.connect(fresh.tracking_uri)
    version = registry.promote(client, fresh.name, "champion", from_alias="backtest_20250403")
    assert version == fresh.version_of("backtest_20250403")
    assert registry.list_aliases(client, fresh.name)["champion"] == version


def test_promote_to_a_version(fresh: RegisteredModel) -> None:
    client = registry.connect(fresh.tracking_uri)
    registry.promote(client, fresh.name, "production", version=fresh.version_of("backtest_20250320"))
    assert registry.resolve(client, fresh.name, alias="production").version == fresh.version_of(
        "backtest_20250320"
    )


def test_an_unknown_alias_is_not_found(registered: RegisteredModel) -> None:
    with pytest.raises(registry.AliasNotFoundError, match="no alias 'nope'"):
        registry.resolve(registry.connect(registered.tracking_uri), registered.name, alias="nope")


def test_an_unknown_version_is_not_found(registered: RegisteredModel) -> None:
    with pytest.raises(registry.VersionNotFoundError):
        registry.resolve(registry.connect(registered.tracking_uri), registered.name, version="999")


def test_a_loaded_version_predicts_exactly_what_the_trained_model_did(
    registered: RegisteredModel, trained_models: dict[date, TrainedModel], model_cache: Path
) -> None:
    client = registry.connect(registered.tracking_uri)
    loaded = registry.load_alias(client, registered.name, "backtest_20250327", model_cache)
    original = trained_models[date(2025, 3, 27)]
    windows = torch.rand(4, loaded.config.window, loaded.config.n_features) + 1
    windows[..., loaded.config.close_index] *= 90_000
    with torch.inference_mode():
        assert torch.equal(loaded.model(windows), original.model(windows))
    assert loaded.version == registered.version_of("backtest_20250327")


def test_downloaded_files_are_text_and_safetensors_only(
    registered: RegisteredModel, model_cache: Path
) -> None:
    client = registry.connect(registered.tracking_uri)
    ref = registry.resolve(client, registered.name, alias="production")
    files = registry.download_version(client, ref, model_cache)
    assert sorted(p.name for p in files.iterdir()) == sorted(
        [CONFIG_FILE, WEIGHTS_FILE, "MLmodel", "conda.yaml", "python_env.yaml", "requirements.txt"]
    )


def test_run_records_params_and_metrics(registered: RegisteredModel) -> None:
    client = registry.connect(registered.tracking_uri)
    run = client.get_run(registry.resolve(client, registered.name, alias="backtest_20250327").run_id)
    assert run.data.params["base_date"] == "2025-03-27"
    assert {"validation_mae", "persistence_mae", "validation_directional_accuracy"} <= set(run.data.metrics)


def test_an_unreachable_mlflow_is_reported_unavailable(tmp_path: Path) -> None:
    client = registry.connect(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(registry.RegistryUnavailable):
        registry.list_aliases(client, "btc-lstm")


def test_mlflow_server_helper_stops_and_restarts_on_its_port(tmp_path: Path) -> None:
    server = mlflow_server(tmp_path / "mlflow", ready_timeout=240)
    with server:
        url = server.url
        server.restart()
        assert server.url == url
        assert registry.list_aliases(registry.connect(url), "x") == {}
    assert not server.running


def test_model_files_round_trip_through_s3_artifact_storage(
    seaweedfs, trained_models: dict[date, TrainedModel], tmp_path: Path
) -> None:
    s3 = seaweedfs.settings()
    with mlflow_server(tmp_path / "mlflow", s3=s3, ready_timeout=240) as server:
        client = registry.connect(server.url)
        trained = trained_models[date(2025, 3, 27)]
        registry.register(client, "btc-lstm-s3", trained, alias="backtest_20250327")
        loaded = registry.load_alias(client, "btc-lstm-s3", "20250327", tmp_path / "cache")
    stored = s3_client(s3).list_objects_v2(Bucket=ARTIFACTS_BUCKET)["Contents"]
    assert any(obj["Key"].endswith(f"model/{WEIGHTS_FILE}") for obj in stored)
    windows = torch.rand(3, loaded.config.window, loaded.config.n_features) + 1
    with torch.inference_mode():
        assert torch.equal(loaded.model(windows), trained.model(windows))


def test_importing_the_registry_imports_neither_torch_nor_matplotlib() -> None:
    """The operator imports the registry and has no torch; plots are drawn only when registering."""
    code = "import sys, btcforecast.registry; print(sorted({'torch', 'matplotlib'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_loaded_version_fetches_only_its_config_and_weights(
    registered: RegisteredModel, tmp_path: Path
) -> None:
    client = registry.connect(registered.tracking_uri)
    ref = registry.resolve(client, registered.name, alias="production")
    files = registry.download_serving_files(client, ref, tmp_path)
    assert sorted(p.name for p in files.iterdir()) == sorted([CONFIG_FILE, WEIGHTS_FILE])
    assert sorted(p.name for p in registry.download_version(client, ref, tmp_path).iterdir()) == sorted(
        [CONFIG_FILE, WEIGHTS_FILE, "MLmodel", "conda.yaml", "python_env.yaml", "requirements.txt"]
    )
