"""Every registered version is an MLflow Model whose pyfunc flavor loads through this module.

A version's ``model/`` artifact holds the two files the predictor loads (``config.json`` and
``weights.safetensors``) plus an ``MLmodel`` file, so ``mlflow.pyfunc.load_model("models:/btc-lstm@
production")`` works and the MLflow UI shows the signature and an input example. The
``python_function`` flavor names this module as its ``loader_module``: MLflow imports it from the
installed ``btc-forecast`` package and calls :func:`_load_pyfunc`, which rebuilds the network with
:func:`btcforecast.model.load_model` (JSON config, safetensors weights) and predicts with
:func:`btcforecast.model.predict_quantiles`, the predictor's own inference path. Nothing in the
registry is executed or unpickled: no ``code_paths``, no cloudpickle, no ``python_model.pkl``.

The dependency files (``requirements.txt``, ``python_env.yaml``, ``conda.yaml``) are written from
the installed versions, never inferred: MLflow's inference would load the model in a subprocess
and may query package indexes.

torch is imported only when a model is loaded (this module is imported by the registry, which the
operator uses without torch).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from mlflow.models import Model, ModelSignature
from mlflow.models.utils import _save_example
from mlflow.pyfunc import add_to_model
from mlflow.types import Schema, TensorSpec
from mlflow.utils.environment import (
    _CONDA_ENV_FILE_NAME,
    _PYTHON_ENV_FILE_NAME,
    _REQUIREMENTS_FILE_NAME,
    _mlflow_conda_env,
    _PythonEnv,
)
from mlflow.utils.file_utils import write_to
from mlflow.utils.yaml_utils import write_yaml

if TYPE_CHECKING:
    from btcforecast.model import ForecastLSTM, ModelConfig

LOADER_MODULE = __name__
MLMODEL_FILE = "MLmodel"
INPUT_NAME = "windows"
"""The one input tensor, as the predictor's v2 protocol names it."""
REQUIREMENTS = ("mlflow", "btc-forecast", "torch", "numpy", "safetensors")
"""What the pyfunc flavor imports; pinned to the installed versions in requirements.txt.
``btc-forecast`` is this repository's package (not on PyPI): install it from the repository."""


def output_order(config: ModelConfig) -> list[tuple[str, int]]:
    """(output name, column of the [N, Q] quantiles) as the predictor answers: ``close`` first, then
    the other quantiles in increasing order (``close_p10``, ``close_p90``)."""
    point = config.point_index
    others = [i for i in range(len(config.quantiles)) if i != point]
    return [(config.output_names[i], i) for i in (point, *others)]


def signature(config: ModelConfig) -> ModelSignature:
    """Input ``windows`` float32 [-1, T, F]; one float32 [-1] output per quantile (``close``, ...)."""
    inputs = Schema([TensorSpec(np.dtype(np.float32), (-1, config.window, config.n_features), INPUT_NAME)])
    outputs = Schema([TensorSpec(np.dtype(np.float32), (-1,), name) for name, _ in output_order(config)])
    return ModelSignature(inputs=inputs, outputs=outputs)


def model_metadata(config: ModelConfig) -> dict[str, Any]:
    """What a client needs to build windows (TensorSpec has no per-feature names) and read outputs."""
    return {
        "input": INPUT_NAME,
        "window": config.window,
        "feature_names": list(config.feature_names),
        "close_index": config.close_index,
        "quantiles": list(config.quantiles),
        "output_names": [name for name, _ in output_order(config)],
        "point_output": config.output_names[config.point_index],
        "format_version": config.format_version,
        "base_date": config.training.get("base_date"),
        "synthetic": config.synthetic,
    }


def pip_requirements() -> list[str]:
    """``package==version`` as installed, without local labels (``torch==2.13.0`` matches ``+cpu``)."""
    pins = []
    for package in REQUIREMENTS:
        try:
            pins.append(f"{package}=={importlib.metadata.version(package).split('+')[0]}")
        except importlib.metadata.PackageNotFoundError:
            pins.append(package)
    return pins


def write_mlmodel(
    directory: Path,
    config: ModelConfig,
    *,
    input_example: np.ndarray | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
) -> Model:
    """Turn a directory holding config.json and weights.safetensors into an MLflow Model.

    Writes ``MLmodel``, the dependency files and, given a real window batch [N, T, F], the input
    example the MLflow way (``input_example.json`` and ``serving_input_example.json``).
    """
    model = Model(
        artifact_path=artifact_path,
        run_id=run_id,
        signature=signature(config),
        metadata=model_metadata(config),
    )
    if input_example is not None:
        _save_example(model, {INPUT_NAME: np.asarray(input_example, dtype=np.float32)}, str(directory))
    requirements = pip_requirements()
    write_to(str(directory / _REQUIREMENTS_FILE_NAME), "\n".join(requirements) + "\n")
    write_yaml(
        str(directory),
        _CONDA_ENV_FILE_NAME,
        _mlflow_conda_env(additional_pip_deps=requirements, install_mlflow=False),
        overwrite=True,
    )
    _PythonEnv.current().to_yaml(str(directory / _PYTHON_ENV_FILE_NAME))
    add_to_model(
        model,
        loader_module=LOADER_MODULE,
        conda_env=_CONDA_ENV_FILE_NAME,
        python_env=_PYTHON_ENV_FILE_NAME,
    )
    model.save(str(directory / MLMODEL_FILE))
    return model


class QuantileForecaster:
    """The pyfunc implementation: raw windows in, one array per served output out."""

    def __init__(self, model: ForecastLSTM, config: ModelConfig) -> None:
        self.model = model
        self.config = config

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
        """``{"windows": [N, T, F]}`` (or the bare array) -> ``{"close": [N], "close_p10": [N], ...}``."""
        from btcforecast.model import predict_quantiles

        windows = model_input[INPUT_NAME] if isinstance(model_input, dict) else model_input
        windows = np.ascontiguousarray(windows, dtype=np.float32)
        expected = (self.config.window, self.config.n_features)
        if windows.ndim != 3 or windows.shape[1:] != expected:
            raise ValueError(f"windows must be [N, {expected[0]}, {expected[1]}], got {list(windows.shape)}")
        quantiles = predict_quantiles(self.model, windows)
        return {name: quantiles[:, column] for name, column in output_order(self.config)}


def _load_pyfunc(path: str) -> QuantileForecaster:
    """MLflow's pyfunc entry point: ``path`` is the version's ``model/`` directory."""
    from btcforecast.model import load_model

    return QuantileForecaster(*load_model(Path(path)))
