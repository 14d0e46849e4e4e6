"""Registered versions are MLflow Models: pyfunc by alias, signature, input example, backtest on the run.

Against a real MLflow server and a real (in-process) predictor; the models are the session's
trained ones (btcforecast.training), registered here with the real market bars.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.tracking import MlflowClient

from btcforecast import mlflow_model, registry
from btcforecast.evaluation import backtest_report
from btcforecast.features import FEATURES, compute_features, history_start, windows_for_range
from btcforecast.model import CONFIG_FILE, WEIGHTS_FILE, predict_quantiles, save_model
from btcforecast.training import TrainedModel
from tests.fixtures.registry import RegisteredModel
from tests.predictor.conftest import v2_body
from tests.predictor.inprocess import serve_in_process

BASE_DATE = date(2025, 3, 27)
SERVED_OUTPUTS = ["close", "close_p10", "close_p90"]
BACKTEST_METRICS = {
    "backtest_mae",
    "backtest_rmse",
    "backtest_mape",
    "backtest_directional_accuracy",
    "backtest_flat_share",
    "backtest_n",
    "backtest_persistence_mae",
    "backtest_mae_ratio",
    "backtest_dm_statistic",
    "backtest_dm_p_value",
    "backtest_coverage",
    "backtest_coverage_calm",
    "backtest_coverage_normal",
    "backtest_coverage_volatile",
    "backtest_interval_width",
    "backtest_pinball",
    "backtest_naive_coverage",
    "backtest_naive_pinball",
    "backtest_pinball_ratio",
}
MODEL_FILES = {
    CONFIG_FILE,
    WEIGHTS_FILE,
    "MLmodel",
    "requirements.txt",
    "python_env.yaml",
    "conda.yaml",
    "input_example.json",
    "serving_input_example.json",
}


@pytest.fixture(scope="module")
def evaluated(mlflow, trained_models: dict[date, TrainedModel], market_bars: pd.DataFrame) -> RegisteredModel:
    """The 2025-03-27 model registered with the bars (`production`), and once more with the bars
    ending before its base date (`tail`: no later hours, so its validation tail is backtested)."""
    client = registry.connect(mlflow.url)
    result = RegisteredModel(tracking_uri=mlflow.url, name="btc-lstm-mlflow-model")
    trained = trained_models[BASE_DATE]
    result.aliases["production"] = registry.register(
        client, result.name, trained, alias="production", bars=market_bars
    )
    before = market_bars.loc[: pd.Timestamp(BASE_DATE.isoformat(), tz="UTC") - pd.Timedelta(hours=1)]
    result.aliases["tail"] = registry.register(client, result.name, trained, alias="tail", bars=before)
    return result


@pytest.fixture(scope="module")
def windows(market_bars: pd.DataFrame) -> np.ndarray:
    """Real windows: the 48 hours from 2025-04-10 00:00 UTC, float32 [48, 12, 7]."""
    start = pd.Timestamp("2025-04-10", tz="UTC")
    end = start + pd.Timedelta(hours=47)
    array, _ = windows_for_range(compute_features(market_bars.loc[history_start(start) : end]), start, end)
    return array


@pytest.fixture
def models_uri(evaluated: RegisteredModel) -> Iterator[str]:
    """``models:/<name>`` with MLflow's global tracking and registry URIs on the test server."""
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(evaluated.tracking_uri)
    mlflow.set_registry_uri(evaluated.tracking_uri)
    yield f"models:/{evaluated.name}"
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])


def _client(model: RegisteredModel) -> MlflowClient:
    return registry.connect(model.tracking_uri)


def _model_dir(model: RegisteredModel, alias: str, cache: Path) -> Path:
    client = _client(model)
    return registry.download_version(client, registry.resolve(client, model.name, alias=alias), cache)


def _run(model: RegisteredModel, alias: str):
    client = _client(model)
    return client.get_run(registry.resolve(client, model.name, alias=alias).run_id)


async def test_pyfunc_by_alias_predicts_exactly_what_the_predictor_answers(
    evaluated: RegisteredModel, models_uri: str, windows: np.ndarray, tmp_path: Path
) -> None:
    pyfunc = mlflow.pyfunc.load_model(f"{models_uri}@production", dst_path=str(tmp_path))
    predicted = pyfunc.predict({"windows": windows})

    with pytest.MonkeyPatch.context() as mp:
        _, app = serve_in_process(evaluated, tmp_path / "predictor", mp)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p") as client:
            response = await client.post("/v2/models/btc-lstm/infer", json=v2_body(windows))
    assert response.status_code == 200, response.text
    served = {out["name"]: np.asarray(out["data"], np.float32) for out in response.json()["outputs"]}

    assert list(predicted) == list(served) == SERVED_OUTPUTS
    for name, values in served.items():
        np.testing.assert_array_equal(predicted[name], values, err_msg=name)


def test_pyfunc_outputs_are_the_trained_models_quantiles_by_name(
    models_uri: str, trained_models: dict[date, TrainedModel], windows: np.ndarray, tmp_path: Path
) -> None:
    pyfunc = mlflow.pyfunc.load_model(f"{models_uri}@production", dst_path=str(tmp_path))
    predicted = pyfunc.predict({"windows": windows})
    trained = trained_models[BASE_DATE]
    quantiles = predict_quantiles(trained.model, windows)
    for column, name in enumerate(trained.config.output_names):
        np.testing.assert_array_equal(predicted[name], quantiles[:, column])
    assert (predicted["close_p10"] <= predicted["close"]).all()
    assert (predicted["close"] <= predicted["close_p90"]).all()


def test_mlmodel_loads_through_our_package_with_no_code_paths_or_pickles(
    evaluated: RegisteredModel, tmp_path: Path
) -> None:
    directory = _model_dir(evaluated, "production", tmp_path)
    model = Model.load(str(directory / "MLmodel"))
    assert list(model.flavors) == ["python_function"]
    flavor = model.flavors["python_function"]
    assert flavor["loader_module"] == "btcforecast.mlflow_model"
    assert not {"code", "data", "model_code_path"} & set(flavor)
    assert {p.name for p in directory.iterdir()} == MODEL_FILES
    assert not [p for p in directory.rglob("*") if p.suffix in {".pkl", ".pickle", ".pt", ".pth"}]


def test_requirements_are_pinned_to_the_installed_packages(
    evaluated: RegisteredModel, tmp_path: Path
) -> None:
    directory = _model_dir(evaluated, "production", tmp_path)
    requirements = (directory / "requirements.txt").read_text().split()
    assert requirements == mlflow_model.pip_requirements()
    assert all("==" in line for line in requirements)
    assert f"mlflow=={mlflow.__version__}" in requirements


def test_signature_is_the_windows_tensor_in_and_the_served_outputs_out(
    evaluated: RegisteredModel, tmp_path: Path
) -> None:
    model = Model.load(str(_model_dir(evaluated, "production", tmp_path) / "MLmodel"))
    (windows_spec,) = model.signature.inputs.inputs
    assert (windows_spec.name, windows_spec.type, windows_spec.shape) == (
        "windows",
        np.dtype(np.float32),
        (-1, 12, len(FEATURES)),
    )
    outputs = [(spec.name, spec.type, spec.shape) for spec in model.signature.outputs.inputs]
    assert outputs == [(name, np.dtype(np.float32), (-1,)) for name in SERVED_OUTPUTS]
    assert model.metadata["feature_names"] == list(FEATURES)
    assert model.metadata["output_names"] == SERVED_OUTPUTS
    assert model.metadata["quantiles"] == [0.1, 0.5, 0.9]


def test_input_example_is_the_real_window_before_the_base_date(
    evaluated: RegisteredModel, models_uri: str, market_bars: pd.DataFrame, tmp_path: Path
) -> None:
    pyfunc = mlflow.pyfunc.load_model(f"{models_uri}@production", dst_path=str(tmp_path))
    start = pd.Timestamp(BASE_DATE.isoformat(), tz="UTC")
    features = compute_features(market_bars.loc[history_start(start) : start])
    first, _ = windows_for_range(features, start, start)
    np.testing.assert_array_equal(np.asarray(pyfunc.input_example["windows"], np.float32), first)
    directory = _model_dir(evaluated, "production", tmp_path / "cache")
    serving = json.loads((directory / "serving_input_example.json").read_text())
    assert np.asarray(serving["inputs"]["windows"], np.float32).shape == (1, 12, len(FEATURES))


def test_pyfunc_refuses_windows_of_the_wrong_shape(models_uri: str, windows: np.ndarray, tmp_path) -> None:
    pyfunc = mlflow.pyfunc.load_model(f"{models_uri}@production", dst_path=str(tmp_path))
    with pytest.raises(MlflowException, match="Shape of input"):
        pyfunc.predict({"windows": windows[:, :5]})


def test_a_version_registered_without_bars_is_an_mlflow_model_without_an_example(
    registered: RegisteredModel, tmp_path: Path
) -> None:
    directory = _model_dir(registered, "production", tmp_path)
    model = Model.load(str(directory / "MLmodel"))
    assert model.signature is not None
    assert model.saved_input_example_info is None
    assert not (directory / "input_example.json").exists()
    assert not {k for k in _run(registered, "production").data.metrics if k.startswith("backtest_")}


def test_an_old_version_without_mlmodel_still_loads_for_the_predictor(
    evaluated: RegisteredModel, trained_models: dict[date, TrainedModel], windows: np.ndarray, tmp_path: Path
) -> None:
    client = _client(evaluated)
    trained = trained_models[BASE_DATE]
    run = client.create_run(client.get_experiment_by_name(registry.EXPERIMENT).experiment_id)
    with tempfile.TemporaryDirectory() as tmp:
        save_model(trained.model, trained.config, Path(tmp) / "model")  # format-1 era: the two files only
        client.log_artifacts(run.info.run_id, str(Path(tmp) / "model"), "model")
    client.set_terminated(run.info.run_id)
    old = client.create_model_version(
        evaluated.name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )

    ref = registry.resolve(client, evaluated.name, version=str(old.version))
    loaded = registry.load_version(client, ref, tmp_path)
    assert sorted(p.name for p in (tmp_path / evaluated.name / ref.version).iterdir()) == [
        CONFIG_FILE,
        WEIGHTS_FILE,
    ]
    with torch.inference_mode():
        assert torch.equal(loaded.model(torch.from_numpy(windows)), trained.model(torch.from_numpy(windows)))


def test_the_run_has_the_backtest_of_the_week_after_the_base_date(evaluated: RegisteredModel) -> None:
    run = _run(evaluated, "production")
    assert set(run.data.metrics) >= BACKTEST_METRICS
    assert run.data.metrics["backtest_n"] == 168
    assert run.data.params["backtest_period"] == "after_base_date"
    assert run.data.params["backtest_start"] == "2025-03-27T00:00:00+00:00"
    assert run.data.params["backtest_end"] == "2025-04-02T23:00:00+00:00"


def test_the_logged_metrics_are_the_backtest_report_of_the_trained_model(
    evaluated: RegisteredModel, trained_models: dict[date, TrainedModel], market_bars: pd.DataFrame
) -> None:
    trained = trained_models[BASE_DATE]
    start = pd.Timestamp(BASE_DATE.isoformat(), tz="UTC")
    end = start + pd.Timedelta(days=7) - pd.Timedelta(hours=1)
    features = compute_features(market_bars.loc[history_start(start) : end])
    week, hours = windows_for_range(features, start, end)
    report = backtest_report(
        market_bars["close"], hours, predict_quantiles(trained.model, week), trained.config.quantiles
    )
    metrics = _run(evaluated, "production").data.metrics
    assert metrics["backtest_mae"] == pytest.approx(report.model.mae)
    assert metrics["backtest_persistence_mae"] == pytest.approx(report.persistence.mae)
    assert metrics["backtest_coverage"] == pytest.approx(report.interval.coverage)
    assert metrics["backtest_pinball_ratio"] == pytest.approx(report.pinball_ratio)
    assert metrics["backtest_dm_p_value"] == pytest.approx(report.significance.p_value)


def test_the_run_has_the_backtest_plot_and_report(evaluated: RegisteredModel, tmp_path: Path) -> None:
    run = _run(evaluated, "production")
    client = _client(evaluated)
    assert {a.path for a in client.list_artifacts(run.info.run_id, "backtest")} == {
        registry.BACKTEST_PLOT,
        registry.BACKTEST_REPORT,
    }
    png = Path(client.download_artifacts(run.info.run_id, registry.BACKTEST_PLOT, str(tmp_path)))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads(
        Path(client.download_artifacts(run.info.run_id, registry.BACKTEST_REPORT, str(tmp_path))).read_text()
    )
    assert report["model"]["n"] == 168
    assert report["interval"]["level"] == pytest.approx(0.8)


def test_without_later_bars_the_validation_tail_is_backtested(
    evaluated: RegisteredModel, trained_models: dict[date, TrainedModel]
) -> None:
    run = _run(evaluated, "tail")
    training = trained_models[BASE_DATE].config.training
    assert run.data.params["backtest_period"] == "validation_tail"
    assert run.data.params["backtest_start"] == pd.Timestamp(training["validation_start"]).isoformat()
    assert run.data.params["backtest_end"] == "2025-03-26T23:00:00+00:00"
    assert run.data.metrics["backtest_n"] == training["validation_samples"]
