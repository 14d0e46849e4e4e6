"""The load-time check that a version answers finite, ordered prices before it may serve.

A version's files can be well-formed (a valid config, safetensors weights of the right shapes) and
still be unservable: a NaN or infinite weight makes every forecast NaN, which the v2 protocol would
carry as ``null`` with status 200. Each version is run once on a valid window built from its own
config before it goes into the cache or live; one that answers a non-finite or crossed (p10 > p90)
forecast is refused with :class:`UnservableVersion` (a ``ModelFormatError``: 422 on a reload, the
previous version keeps serving; a failed start-up load is retried).
"""

from __future__ import annotations

import itertools

import numpy as np

from btcforecast.model import ModelConfig, ModelFormatError, predict_quantiles
from btcforecast.registry import LoadedModel
from predictor.validation import DOMAINS, WindowSpec, check_windows

WARMUP_CLOSE = 1.0
"""Any positive price: the model reads the close relative to the window's last one, so scale is moot."""


class UnservableVersion(ModelFormatError):
    """A version whose forecast for a valid window is not finite, or whose quantiles cross."""


def spec_of(config: ModelConfig) -> WindowSpec:
    return WindowSpec(
        window=config.window, feature_names=tuple(config.feature_names), close_index=config.close_index
    )


def warmup_windows(config: ModelConfig) -> np.ndarray:
    """One valid window [1, T, F]: every feature at its training mean (inside its domain), close flat."""
    mean = np.asarray(config.feature_mean or [0.0] * config.n_features, dtype=np.float32)
    window = np.repeat(mean[None, None, :], config.window, axis=1)
    for k, name in enumerate(config.feature_names):
        if name in DOMAINS:
            low, high, _ = DOMAINS[name]
            window[..., k] = np.clip(window[..., k], low, high)
    window[..., config.close_index] = WARMUP_CLOSE
    return np.ascontiguousarray(window, dtype=np.float32)


def problem(quantiles: np.ndarray, config: ModelConfig) -> str | None:
    """What is wrong with a [1, Q] warm-up forecast, or None when it is servable."""
    expected = (1, len(config.quantiles))
    if quantiles.shape != expected:
        return f"it answers shape {list(quantiles.shape)} instead of {list(expected)}"
    values = ", ".join(f"{n} = {v}" for n, v in zip(config.output_names, quantiles[0], strict=True))
    if not np.isfinite(quantiles).all():
        return f"it answers a non-finite forecast for a valid window ({values})"
    if any(a > b for a, b in itertools.pairwise(quantiles[0])):
        return f"its quantiles cross for a valid window ({values})"
    return None


def check_servable(loaded: LoadedModel) -> None:
    """Run the version once on a valid window; UnservableVersion if the forecast is not usable."""
    config = loaded.config
    windows = check_windows(warmup_windows(config), spec_of(config), max_windows=1)
    found = problem(predict_quantiles(loaded.model, windows), config)
    if found is not None:
        raise UnservableVersion(f"model version {loaded.version} is refused: {found}")
