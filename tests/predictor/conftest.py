"""Fixtures for the predictor: in-process apps over real MLflow, and windows to send."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import torch
from fastapi import FastAPI

from btcforecast import registry
from btcforecast.features import compute_features, history_start, windows_for_range
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


@pytest.fixture(scope="session")
def expected(registered: RegisteredModel, windows: np.ndarray, tmp_path_factory: pytest.TempPathFactory):
    """version -> what the core model of that version predicts for ``windows`` (loaded on its own)."""
    client = registry.connect(registered.tracking_uri)
    cache = tmp_path_factory.mktemp("expected-models")
    answers: dict[str, np.ndarray] = {}

    def predict(version: str) -> np.ndarray:
        if version not in answers:
            ref = registry.resolve(client, registered.name, version=version)
            loaded = registry.load_version(client, ref, cache)
            with torch.no_grad():
                answers[version] = loaded.model(torch.from_numpy(windows)).numpy()
        return answers[version]

    return predict


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


def v2_binary(windows: np.ndarray, binary_output: bool = False, **parameters: object) -> tuple[bytes, dict]:
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
    json_part = json.dumps(header).encode()
    headers = {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(json_part)),
    }
    return json_part + raw, headers
