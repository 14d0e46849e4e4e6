"""Fixtures for the predictor: in-process apps over real MLflow, and windows to send."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import torch
from fastapi import FastAPI

from btcforecast import registry
from btcforecast.features import compute_features, history_start, windows_for_range
from btcforecast.model import ForecastLSTM
from btcforecast.training import TrainedModel
from predictor.model import ForecastModel
from tests.fixtures.registry import RegisteredModel
from tests.predictor.inprocess import serve_in_process


@dataclass
class Predictor:
    model: ForecastModel
    app: FastAPI
    client: httpx.AsyncClient


@pytest.fixture(scope="session")
def windows(market_bars: pd.DataFrame) -> np.ndarray:
    """Real-shaped raw feature windows: 48 predicted hours from 2025-04-10."""
    start = pd.Timestamp("2025-04-10", tz="UTC")
    end = start + pd.Timedelta(hours=47)
    features = compute_features(market_bars.loc[history_start(start) - pd.Timedelta(hours=48) : end])
    array, _ = windows_for_range(features, start, end)
    return array


def core_predictions(
    reg: RegisteredModel, cache: Path, windows: np.ndarray
) -> Callable[[str], dict[str, np.ndarray]]:
    """version -> {output name: [N]} that the core module of that version predicts (loaded on its own)."""
    client = registry.connect(reg.tracking_uri)
    answers: dict[str, dict[str, np.ndarray]] = {}

    def predict(version: str) -> dict[str, np.ndarray]:
        if version not in answers:
            ref = registry.resolve(client, reg.name, version=version)
            loaded = registry.load_version(client, ref, cache)
            with torch.no_grad():
                quantiles = loaded.model(torch.from_numpy(windows)).numpy()
            names = loaded.config.output_names
            answers[version] = {name: quantiles[:, i] for i, name in enumerate(names)}
        return answers[version]

    return predict


@pytest.fixture(scope="session")
def expected(registered: RegisteredModel, windows: np.ndarray, tmp_path_factory: pytest.TempPathFactory):
    """version -> {output name: what the core model of that version predicts for ``windows``}."""
    return core_predictions(registered, tmp_path_factory.mktemp("expected-models"), windows)


def point_only(trained: TrainedModel) -> TrainedModel:
    """The same network as a format-1 version: one output, the median (what versions before 11 were)."""
    config = dataclasses.replace(trained.config, quantiles=[0.5], format_version=1)
    module = ForecastLSTM(config)
    state = trained.model.state_dict()
    keep = trained.config.point_index
    state["head.weight"] = state["head.weight"][keep : keep + 1].clone()
    state["head.bias"] = state["head.bias"][keep : keep + 1].clone()
    module.load_state_dict(state)
    return TrainedModel(model=module.eval(), config=config, base_date=trained.base_date)


def with_nan_bias(trained: TrainedModel) -> TrainedModel:
    """A copy whose head bias holds a NaN: valid safetensors of the right shapes, NaN forecasts."""
    module = copy.deepcopy(trained.model)
    with torch.no_grad():
        module.head.bias[trained.config.point_index] = float("nan")  # every quantile builds on it
    return TrainedModel(model=module, config=trained.config, base_date=trained.base_date)


@pytest.fixture(scope="session")
def crafted(mlflow, trained_models: dict[date, TrainedModel]) -> RegisteredModel:
    """`btc-lstm-crafted`: `production` a good version, `point_only` format 1, `nan` NaN weights.

    Registered in the real MLflow through the registry (safetensors files, as every version).
    """
    client = registry.connect(mlflow.url)
    name = "btc-lstm-crafted"
    trained = trained_models[date(2025, 7, 24)]
    reg = RegisteredModel(tracking_uri=mlflow.url, name=name)
    for alias, version in (
        ("production", trained),
        ("point_only", point_only(trained)),
        ("nan", with_nan_bias(trained)),
    ):
        reg.aliases[alias] = registry.register(client, name, version, alias=alias)
    return reg


@pytest.fixture(scope="session")
def crafted_expected(crafted: RegisteredModel, windows: np.ndarray, tmp_path_factory: pytest.TempPathFactory):
    return core_predictions(crafted, tmp_path_factory.mktemp("crafted-models"), windows)


@pytest.fixture(scope="session")
def predictor_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One STATE_DIR for in-process predictors: each version is downloaded once per session."""
    return tmp_path_factory.mktemp("predictor-state")


@pytest.fixture
async def make_predictor(
    predictor_state: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[..., Predictor]]:
    """Factory: an in-process predictor (KServe's REST app) for a registered model, loaded."""
    clients: list[httpx.AsyncClient] = []

    def make(reg: RegisteredModel, load: bool = True, **overrides: object) -> Predictor:
        model, app = serve_in_process(reg, predictor_state, monkeypatch, load=load, **overrides)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://predictor", timeout=30.0
        )
        clients.append(client)
        return Predictor(model=model, app=app, client=client)

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def predictor(make_predictor: Callable[..., Predictor], registered: RegisteredModel) -> Predictor:
    """Serving the shared `btc-lstm` registration at `production`."""
    return make_predictor(registered)


def v2_body(windows: np.ndarray, **parameters: object) -> dict:
    body: dict = {
        "inputs": [
            {
                "name": "windows",
                "shape": list(windows.shape),
                "datatype": "FP32",
                "data": windows.ravel().tolist(),
            }
        ]
    }
    if parameters:
        body["parameters"] = parameters
    return body


def v2_binary(
    windows: np.ndarray, binary_output: bool = False, outputs: list[dict] | None = None, **parameters: object
) -> tuple[bytes, dict]:
    """The v2 binary tensor extension: JSON header, then the raw little-endian FP32 bytes."""
    raw = np.ascontiguousarray(windows, dtype="<f4").tobytes()
    header: dict = {
        "inputs": [
            {
                "name": "windows",
                "shape": list(windows.shape),
                "datatype": "FP32",
                "parameters": {"binary_data_size": len(raw)},
            }
        ]
    }
    params = dict(parameters)
    if binary_output:
        params["binary_data_output"] = True
    if params:
        header["parameters"] = params
    if outputs is not None:
        header["outputs"] = outputs
    json_part = json.dumps(header).encode()
    headers = {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(json_part)),
    }
    return json_part + raw, headers


def binary_outputs(response: httpx.Response) -> dict[str, np.ndarray | list]:
    """{output name: values} of a v2 answer with binary outputs (JSON ``data`` kept as given), in order."""
    json_length = int(response.headers["inference-header-content-length"])
    header = json.loads(response.content[:json_length])
    offset, outputs = json_length, {}
    for output in header["outputs"]:
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is None:
            outputs[output["name"]] = output["data"]
            continue
        outputs[output["name"]] = np.frombuffer(response.content[offset : offset + size], dtype="<f4")
        offset += size
    assert offset == len(response.content), "binary bytes not claimed by any output"
    return outputs
