"""The warm-up check: a version that answers NaN (or a crossed band) for a valid window never serves."""

from __future__ import annotations

import dataclasses

import numpy as np

from btcforecast.model import ModelConfig
from predictor.validation import check_windows
from predictor.warmup import problem, spec_of, warmup_windows
from tests.fixtures.registry import RegisteredModel
from tests.predictor.conftest import Predictor, v2_body

RELOAD = "/v2/models/btc-lstm/reload"
INFER = "/v2/models/btc-lstm/infer"
CONFIG = ModelConfig(
    feature_names=["close", "log_return", "range_hl", "body_oc", "volume_z", "hour_sin", "hour_cos"],
    window=12,
    close_index=0,
    feature_mean=[0.0, 0.0, 0.004, 0.0, 0.1, 0.02, -0.03],
    feature_std=[1.0] * 7,
    quantiles=[0.1, 0.5, 0.9],
)


async def test_reloading_to_a_version_answering_nan_is_a_422_and_the_old_version_keeps_serving(
    make_predictor, crafted: RegisteredModel, windows
):
    predictor: Predictor = make_predictor(crafted)
    response = await predictor.client.post(RELOAD, params={"alias": "nan"})
    assert response.status_code == 422
    assert response.json()["error"] == (
        f"model version {crafted.version_of('nan')} is refused: it answers a non-finite forecast "
        "for a valid window (close_p10 = nan, close = nan, close_p90 = nan)"
    )
    assert predictor.model.live.version == crafted.version_of("production")
    answer = await predictor.client.post(INFER, json=v2_body(windows[:2]))
    assert answer.status_code == 200 and answer.json()["model_version"] == crafted.version_of("production")
    assert crafted.version_of("nan") not in predictor.model.swapper.cache.versions()


async def test_a_request_naming_a_version_answering_nan_is_a_422_not_a_200_with_nulls(
    make_predictor, crafted: RegisteredModel, windows
):
    predictor: Predictor = make_predictor(crafted)
    response = await predictor.client.post(INFER, json=v2_body(windows[:2], model_alias="nan"))
    assert response.status_code == 422
    assert "non-finite forecast" in response.json()["error"]


async def test_a_start_on_a_version_answering_nan_fails_and_is_not_ready(
    make_predictor, crafted: RegisteredModel
):
    predictor: Predictor = make_predictor(
        crafted, load=False, model_version=crafted.version_of("nan"), load_retry_attempts=1
    )
    predictor.model.load_in_background().join()
    assert not predictor.model.ready
    assert (await predictor.client.get("/v2/health/ready")).status_code == 503
    serving = (await predictor.client.get("/v2/models/btc-lstm/serving")).json()
    assert serving["load_error"].startswith("UnservableVersion: model version")
    assert "non-finite forecast" in serving["load_error"]


def test_the_warm_up_window_is_valid_input_for_the_model():
    windows = warmup_windows(CONFIG)
    assert windows.shape == (1, 12, 7) and windows.dtype == np.float32
    check_windows(windows, spec_of(CONFIG), max_windows=1)


def test_the_warm_up_window_stays_inside_the_domains_whatever_the_training_means():
    odd = dataclasses.replace(CONFIG, feature_mean=[5.0, 0.0, -1.0, 0.0, 0.0, 3.0, -3.0])
    check_windows(warmup_windows(odd), spec_of(odd), max_windows=1)


def test_a_finite_ordered_forecast_is_servable():
    assert problem(np.array([[99.0, 100.0, 101.0]], np.float32), CONFIG) is None


def test_a_crossed_band_is_refused():
    assert problem(np.array([[102.0, 100.0, 101.0]], np.float32), CONFIG) == (
        "its quantiles cross for a valid window (close_p10 = 102.0, close = 100.0, close_p90 = 101.0)"
    )


def test_an_infinite_forecast_is_refused():
    found = problem(np.array([[99.0, 100.0, np.inf]], np.float32), CONFIG)
    assert found is not None and "non-finite" in found and "close_p90 = inf" in found
