from __future__ import annotations

import io
import json
import pickletools
from pathlib import Path

import pytest
import torch

from btcforecast.model import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    ForecastLSTM,
    ModelConfig,
    ModelFormatError,
    load_model,
    model_bytes,
    model_from_bytes,
    save_model,
)
from btcforecast.training import TrainedModel


@pytest.fixture
def trained(trained_models: dict) -> TrainedModel:
    return next(iter(trained_models.values()))


def _windows(config: ModelConfig, n: int = 5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    windows = torch.rand(n, config.window, config.n_features, generator=generator)
    windows[..., config.close_index] = 80_000 + 1_000 * windows[..., config.close_index]
    return windows


def test_saved_model_predicts_exactly_as_before(trained: TrainedModel, tmp_path: Path) -> None:
    save_model(trained.model, trained.config, tmp_path)
    loaded, config = load_model(tmp_path)
    windows = _windows(config)
    with torch.inference_mode():
        assert torch.equal(loaded(windows), trained.model(windows))


def test_prediction_is_a_price_near_the_last_close(trained: TrainedModel) -> None:
    windows = _windows(trained.config)
    with torch.inference_mode():
        predicted = trained.model(windows)
    last_close = windows[:, -1:, trained.config.close_index]
    assert torch.all((predicted / last_close - 1).abs() < 0.2)


def test_quantiles_are_ordered_for_any_window(trained: TrainedModel) -> None:
    windows = _windows(trained.config, n=200)
    with torch.inference_mode():
        predicted = trained.model(windows)
    assert predicted.shape == (200, len(trained.config.quantiles))
    assert torch.all(predicted[:, 1:] >= predicted[:, :-1])


def test_model_files_hold_no_pickle(trained: TrainedModel, tmp_path: Path) -> None:
    save_model(trained.model, trained.config, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    json.loads((tmp_path / CONFIG_FILE).read_text())
    weights = (tmp_path / WEIGHTS_FILE).read_bytes()
    header_length = int.from_bytes(weights[:8], "little")
    json.loads(weights[8 : 8 + header_length])  # safetensors: a JSON header, then raw tensor bytes
    assert not weights.startswith(b"\x80") and b"PK\x03\x04" not in weights[:4]


def test_a_pickle_in_place_of_the_weights_is_refused_unexecuted(
    trained: TrainedModel, tmp_path: Path
) -> None:
    save_model(trained.model, trained.config, tmp_path)
    marker = tmp_path / "executed"
    # A pickle that would create `marker` if anything unpickled it.
    payload = b"\x80\x04cbuiltins\nexec\n(V" + f"open({str(marker)!r}, 'w').close()".encode() + b"\ntR."
    pickletools.dis(payload, out=io.StringIO())  # it is a well-formed pickle
    (tmp_path / WEIGHTS_FILE).write_bytes(payload)
    with pytest.raises(ModelFormatError, match="not a safetensors file"):
        load_model(tmp_path)
    assert not marker.exists()


def test_a_config_that_is_not_ours_is_refused(trained: TrainedModel, tmp_path: Path) -> None:
    save_model(trained.model, trained.config, tmp_path)
    (tmp_path / CONFIG_FILE).write_text(json.dumps({"hello": "world"}))
    with pytest.raises(ModelFormatError):
        load_model(tmp_path)


def test_config_carries_what_serving_needs(trained: TrainedModel) -> None:
    config = trained.config
    assert config.feature_names[config.close_index] == "close"
    assert len(config.feature_mean) == len(config.feature_std) == config.n_features
    assert {"validation", "persistence"} <= set(config.metrics)
    assert set(config.metrics["validation"]) >= {"mae", "rmse", "mape", "directional_accuracy"}
    assert {"source", "synthetic"} <= set(config.data_source)
    assert config.training["base_date"] == trained.base_date.isoformat()


def test_a_shrink_of_zero_serves_the_last_close_as_median_with_ordered_quantiles(
    trained: TrainedModel,
) -> None:
    windows = _windows(trained.config, n=200)
    trained.model.point_shrink, kept = 0.0, trained.model.point_shrink
    try:
        with torch.inference_mode():
            predicted = trained.model(windows)
    finally:
        trained.model.point_shrink = kept
    median = predicted[:, trained.config.point_index]
    assert torch.equal(median, windows[:, -1, trained.config.close_index])
    assert torch.all(predicted[:, 1:] >= predicted[:, :-1])


def test_the_shrink_travels_in_the_config(trained: TrainedModel, tmp_path: Path) -> None:
    save_model(trained.model, trained.config, tmp_path)
    loaded, config = load_model(tmp_path)
    assert loaded.point_shrink == config.point_shrink == trained.config.point_shrink


def test_a_shrink_outside_zero_to_one_is_refused(trained: TrainedModel, tmp_path: Path) -> None:
    save_model(trained.model, trained.config, tmp_path)
    raw = json.loads((tmp_path / CONFIG_FILE).read_text())
    (tmp_path / CONFIG_FILE).write_text(json.dumps({**raw, "point_shrink": 1.5}))
    with pytest.raises(ModelFormatError, match="point_shrink"):
        load_model(tmp_path)


def test_a_format_1_config_still_loads_as_a_point_model(trained: TrainedModel, tmp_path: Path) -> None:
    """Format 1: one output, no quantiles nor point_shrink in config.json."""
    raw = json.loads(trained.config.to_json())
    for key in ("quantiles", "point_shrink"):
        raw.pop(key)
    raw["format_version"] = 1
    point_model = ForecastLSTM(ModelConfig(**{**raw, "quantiles": [0.5]}))
    save_model(point_model, trained.config, tmp_path)
    (tmp_path / CONFIG_FILE).write_text(json.dumps(raw))
    loaded, config = load_model(tmp_path)
    assert config.quantiles == [0.5] and config.point_shrink == 1.0 and config.output_names == ["close"]
    with torch.inference_mode():
        assert loaded(_windows(config)).shape == (5, 1)


def test_model_bytes_rebuild_the_same_model(trained: TrainedModel) -> None:
    model, config = model_from_bytes(*model_bytes(trained.model, trained.config))
    assert config == trained.config
    windows = _windows(config)
    with torch.inference_mode():
        assert torch.equal(model(windows), trained.model(windows))
