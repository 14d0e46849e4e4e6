"""The input domain: a window the model cannot read as prices is a 400 naming window, hour and feature."""

from __future__ import annotations

import json

import numpy as np
import pytest
from kserve.errors import InvalidInput

from btcforecast.features import FEATURES
from predictor.validation import WindowSpec, check_domain
from tests.predictor.conftest import v2_binary, v2_body

INFER = "/v2/models/btc-lstm/infer"
SPEC = WindowSpec(window=12, feature_names=FEATURES, close_index=FEATURES.index("close"))


def with_value(windows: np.ndarray, window: int, hour: int, feature: str, value: float) -> np.ndarray:
    changed = windows.copy()
    changed[window, hour, FEATURES.index(feature)] = value
    return changed


@pytest.mark.parametrize(
    ("feature", "value", "message"),
    [
        ("close", -5.0, "window 3, hour 11: close must be a positive price, got -5.0"),
        ("close", 0.0, "window 3, hour 11: close must be a positive price, got 0.0"),
        (
            "range_hl",
            -0.25,
            "window 3, hour 11: range_hl must be >= 0 (it is log(high / low) and high >= low)",
        ),
        ("hour_sin", 1.5, "window 3, hour 11: hour_sin must lie in [-1, 1] (the sine of the hour of day)"),
        ("hour_cos", -2.0, "window 3, hour 11: hour_cos must lie in [-1, 1] (the cosine of the hour of day)"),
    ],
)
async def test_a_value_outside_its_feature_domain_is_a_400_naming_window_hour_and_feature(
    predictor, windows, feature, value, message
):
    bad = with_value(windows[:5], 3, 11, feature, value)
    response = await predictor.client.post(INFER, json=v2_body(bad))
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)


async def test_v1_refuses_a_non_positive_close_the_same_way(predictor, windows):
    bad = with_value(windows[:2], 1, 0, "close", -1.0)
    response = await predictor.client.post("/v1/models/btc-lstm:predict", json={"instances": bad.tolist()})
    assert response.status_code == 400
    message = "window 1, hour 0: close must be a positive price, got -1.0"
    assert response.json() == {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": message,
        "error": message,
    }


async def test_binary_requests_are_checked_the_same_way(predictor, windows):
    content, headers = v2_binary(with_value(windows[:2], 0, 4, "close", -3.0), binary_output=True)
    response = await predictor.client.post(INFER, content=content, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == "window 0, hour 4: close must be a positive price, got -3.0"


async def test_a_non_finite_value_in_any_feature_is_still_a_400_naming_its_place(predictor, windows):
    bad = with_value(windows[:3], 2, 7, "volume_z", np.inf)
    content = json.dumps(v2_body(bad)).encode()  # Python's json writes Infinity; httpx's json= refuses it
    response = await predictor.client.post(
        INFER, content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == (
        "windows contain NaN or infinite values (first at window 2, hour 7, feature volume_z)"
    )


async def test_features_without_a_certain_domain_take_any_finite_value(predictor, windows):
    odd = windows[:2].copy()
    for feature in ("log_return", "body_oc", "volume_z"):
        odd[:, :, FEATURES.index(feature)] = -50.0
    response = await predictor.client.post(INFER, json=v2_body(odd))
    assert response.status_code == 200, response.text


def test_real_windows_lie_inside_every_domain(windows):
    check_domain(windows, SPEC)


def test_the_first_offending_value_is_named_when_several_are_bad(windows):
    bad = with_value(with_value(windows[:6], 5, 0, "close", -1.0), 2, 9, "close", -2.0)
    with pytest.raises(InvalidInput, match=r"window 2, hour 9: close must be a positive price, got -2.0"):
        check_domain(bad, SPEC)
