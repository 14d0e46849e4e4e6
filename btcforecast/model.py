"""The forecasting network: an LSTM that maps raw feature windows to quantiles of the next hour's close.

The head predicts the median log return plus non-negative gaps to the other quantiles, so the
quantiles are ordered by construction (never a crossed band). Format 1 (one output, the point
forecast) still loads: its ``quantiles`` are ``[0.5]``.

The median's predicted return is multiplied by ``point_shrink`` (0..1, chosen on the validation tail
at training time; 0 serves persistence, the last close) inside the module, so every consumer (the
predictor, the MLflow pyfunc flavor, backtests) gets the same point forecast. The other quantiles are
left as trained and only widened, if ever needed, to keep containing the shrunk median: still ordered.

Scaling lives inside the module (as buffers, also written as plain numbers in the model's config),
so a caller sends raw windows and gets USD prices back, and a model version carries everything it
needs to be served. No KServe or MLflow import here.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load, load_file, save, save_file
from torch import nn

from btcforecast.errors import InputError
from btcforecast.quantiles import POINT_QUANTILE as POINT_QUANTILE
from btcforecast.quantiles import QUANTILES as QUANTILES
from btcforecast.quantiles import output_name as output_name

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
FORMAT_VERSION = 2
SUPPORTED_FORMATS = (1, 2)


class ModelFormatError(InputError):
    """Model files that are not a config.json plus a safetensors file of the expected shape."""


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild and describe a model; written as config.json beside the weights."""

    feature_names: list[str]
    window: int
    close_index: int
    hidden_size: int = 32
    num_layers: int = 1
    feature_mean: list[float] = field(default_factory=list)
    feature_std: list[float] = field(default_factory=list)
    target_mean: float = 0.0
    target_std: float = 1.0
    training: dict[str, Any] = field(default_factory=dict)
    data_source: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    quantiles: list[float] = field(default_factory=lambda: [POINT_QUANTILE])
    point_shrink: float = 1.0
    """Factor on the median's predicted log return: 1 as trained, 0 persistence (configs without it: 1)."""
    format_version: int = FORMAT_VERSION

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def point_index(self) -> int:
        return self.quantiles.index(POINT_QUANTILE)

    @property
    def output_names(self) -> list[str]:
        return [output_name(q) for q in self.quantiles]

    @property
    def synthetic(self) -> bool:
        return bool(self.data_source.get("synthetic", False))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        try:
            raw = json.loads(text)
            config = cls(**raw)
        except (ValueError, TypeError) as e:
            raise ModelFormatError(f"config.json is not a model config: {e}") from e
        if config.format_version not in SUPPORTED_FORMATS:
            raise ModelFormatError(f"unsupported model format_version {config.format_version}")
        if not (0 <= config.close_index < config.n_features) or config.window < 1:
            raise ModelFormatError("config.json has an invalid window or close_index")
        quantiles = config.quantiles
        increasing = all(a < b for a, b in itertools.pairwise(quantiles))
        if POINT_QUANTILE not in quantiles or not increasing:
            raise ModelFormatError(f"config.json quantiles {quantiles} must be increasing and include 0.5")
        if not all(0.0 < q < 1.0 for q in quantiles):
            raise ModelFormatError(f"config.json quantiles {quantiles} must lie strictly between 0 and 1")
        if not 0.0 <= config.point_shrink <= 1.0:
            raise ModelFormatError(f"config.json point_shrink {config.point_shrink} must lie in [0, 1]")
        return config


class ForecastLSTM(nn.Module):
    """LSTM(hidden, layers) over scaled windows; predicts quantiles of the next log return as prices."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        n = config.n_features
        self.close_index = config.close_index
        self.point_index = config.point_index
        self.point_shrink = float(config.point_shrink)
        self.lstm = nn.LSTM(n, config.hidden_size, config.num_layers, batch_first=True)
        self.head = nn.Linear(config.hidden_size, len(config.quantiles))
        mean = config.feature_mean or [0.0] * n
        std = config.feature_std or [1.0] * n
        self.register_buffer("feature_mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("feature_std", torch.tensor(std, dtype=torch.float32))
        self.register_buffer("target_mean", torch.tensor(config.target_mean, dtype=torch.float32))
        self.register_buffer("target_std", torch.tensor(config.target_std, dtype=torch.float32))

    def relative_inputs(self, windows: torch.Tensor) -> torch.Tensor:
        """Replace the raw close by log(close / last close in the window): the path, not the level."""
        close = windows[..., self.close_index]
        relative = torch.log(close / close[:, -1:])
        out = windows.clone()
        out[..., self.close_index] = relative
        return out

    def predict_scaled_returns(self, windows: torch.Tensor) -> torch.Tensor:
        """Scaled log-return quantiles [N, Q], increasing along Q: median plus softplus gaps."""
        x = (self.relative_inputs(windows) - self.feature_mean) / self.feature_std
        hidden, _ = self.lstm(x)
        raw = self.head(hidden[:, -1, :])
        m = self.point_index
        median = raw[:, m : m + 1]
        below = torch.flip(torch.cumsum(torch.flip(nn.functional.softplus(raw[:, :m]), [1]), 1), [1])
        above = torch.cumsum(nn.functional.softplus(raw[:, m + 1 :]), 1)
        return torch.cat([median - below, median, median + above], dim=1)

    def log_returns(self, windows: torch.Tensor, point_shrink: float | None = None) -> torch.Tensor:
        """Log-return quantiles [N, Q] with the median shrunk toward 0; still increasing along Q.

        ``point_shrink`` defaults to the model's own; training passes other values to choose it.
        """
        shrink = self.point_shrink if point_shrink is None else point_shrink
        raw = self.predict_scaled_returns(windows) * self.target_std + self.target_mean
        m = self.point_index
        median = raw[:, m : m + 1] * shrink
        below = torch.minimum(raw[:, :m], median)
        above = torch.maximum(raw[:, m + 1 :], median)
        return torch.cat([below, median, above], dim=1)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """Raw windows [N, T, F] -> next-hour close quantiles [N, Q], in the close feature's unit."""
        return windows[:, -1:, self.close_index] * torch.exp(self.log_returns(windows))


def predict_quantiles(model: ForecastLSTM, windows: np.ndarray) -> np.ndarray:
    """Raw windows [N, T, F] -> close quantiles [N, Q] as float32, without autograd bookkeeping.

    The one inference path: the predictor and the MLflow pyfunc flavor both call it, so they
    answer identically for the same windows.
    """
    if not windows.flags.writeable:
        windows = windows.copy()
    with torch.inference_mode():
        return model(torch.from_numpy(windows)).numpy().astype(np.float32, copy=False)


def save_model(model: ForecastLSTM, config: ModelConfig, directory: Path) -> Path:
    """Write config.json and weights.safetensors into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_FILE).write_text(config.to_json())
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "btc-forecast"})
    return directory


def model_bytes(model: ForecastLSTM, config: ModelConfig) -> tuple[str, bytes]:
    """The model as its two files' contents: config JSON and safetensors bytes (to move between processes)."""
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    return config.to_json(), save(state, metadata={"format": "btc-forecast"})


def model_from_bytes(config_json: str, weights: bytes) -> tuple[ForecastLSTM, ModelConfig]:
    """Inverse of :func:`model_bytes`; validated like :func:`load_model`, nothing unpickled."""
    config = ModelConfig.from_json(config_json)
    try:
        state = load(weights)
    except Exception as e:  # safetensors raises its own SafetensorError
        raise ModelFormatError(f"weights are not safetensors: {e}") from e
    return _with_weights(config, state), config


def _with_weights(config: ModelConfig, state: dict[str, torch.Tensor]) -> ForecastLSTM:
    model = ForecastLSTM(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelFormatError(f"weights do not match the config: {e}") from e
    model.eval()
    return model


def load_model(directory: Path) -> tuple[ForecastLSTM, ModelConfig]:
    """Rebuild the module from config.json and safetensors weights; nothing is unpickled."""
    config_path = directory / CONFIG_FILE
    weights_path = directory / WEIGHTS_FILE
    if not config_path.is_file() or not weights_path.is_file():
        raise ModelFormatError(f"model files missing in {directory}: need {CONFIG_FILE} and {WEIGHTS_FILE}")
    config = ModelConfig.from_json(config_path.read_text())
    try:
        state = load_file(str(weights_path))
    except Exception as e:  # safetensors raises its own SafetensorError and OSError alike
        raise ModelFormatError(f"{WEIGHTS_FILE} is not a safetensors file: {e}") from e
    return _with_weights(config, state), config
