"""The quantile contract: outputs per version, their order, requested outputs, metadata parameters."""

from __future__ import annotations

import numpy as np
import pytest

from btcforecast.features import FEATURES, WINDOW
from tests.fixtures.registry import RegisteredModel
from tests.predictor.conftest import Predictor, binary_outputs, v2_binary, v2_body

INFER = "/v2/models/btc-lstm/infer"
V1 = "/v1/models/btc-lstm:predict"


def json_outputs(body: dict) -> dict[str, np.ndarray]:
    return {o["name"]: np.asarray(o["data"], np.float32) for o in body["outputs"]}


async def test_the_80_percent_interval_brackets_the_median_for_every_window(predictor, windows):
    outputs = json_outputs((await predictor.client.post(INFER, json=v2_body(windows))).json())
    assert np.all(outputs["close_p10"] <= outputs["close"])
    assert np.all(outputs["close"] <= outputs["close_p90"])
    assert np.all(outputs["close_p10"] < outputs["close_p90"])  # a band, not a line


async def test_a_point_only_version_answers_close_alone_in_v2_and_v1(
    make_predictor, crafted: RegisteredModel, windows, crafted_expected
):
    predictor: Predictor = make_predictor(crafted)
    version = crafted.version_of("point_only")
    v2 = (await predictor.client.post(INFER, json=v2_body(windows, model_version=version))).json()
    v1 = await predictor.client.post(V1, json={"instances": windows.tolist(), "parameters": v2["parameters"]})
    assert [o["name"] for o in v2["outputs"]] == ["close"]
    np.testing.assert_array_equal(json_outputs(v2)["close"], crafted_expected(version)["close"])
    assert set(v1.json()) == {"predictions", "model_alias", "model_version"}
    np.testing.assert_array_equal(np.asarray(v1.json()["predictions"], np.float32), json_outputs(v2)["close"])


async def test_requested_outputs_are_answered_alone_and_in_the_order_asked(predictor, windows):
    body = {**v2_body(windows[:4]), "outputs": [{"name": "close_p90"}, {"name": "close_p10"}]}
    answer = (await predictor.client.post(INFER, json=body)).json()
    full = json_outputs((await predictor.client.post(INFER, json=v2_body(windows[:4]))).json())
    assert [o["name"] for o in answer["outputs"]] == ["close_p90", "close_p10"]
    for name, values in json_outputs(answer).items():
        np.testing.assert_array_equal(values, full[name])


async def test_requested_outputs_follow_binary_data_output_unless_they_say_otherwise(predictor, windows):
    outputs = [{"name": "close"}, {"name": "close_p90", "parameters": {"binary_data": False}}]
    content, headers = v2_binary(windows[:4], binary_output=True, outputs=outputs)
    response = await predictor.client.post(INFER, content=content, headers=headers)
    assert response.status_code == 200, response.text
    answer = binary_outputs(response)
    assert list(answer) == ["close", "close_p90"]
    assert isinstance(answer["close"], np.ndarray) and len(answer["close"]) == 4  # binary, as asked overall
    assert isinstance(answer["close_p90"], list) and len(answer["close_p90"]) == 4  # JSON, as asked for it


@pytest.mark.parametrize(
    ("outputs", "words"),
    [
        ([{"name": "close_p50"}], "unknown output 'close_p50': this version answers 'close', 'close_p10'"),
        ([{"name": "close"}, {"name": "close"}], "requested twice"),
        ([{"nom": "close"}], 'string "name"'),
        ({"name": "close"}, '"outputs" must be a list'),
        ([{"name": "close", "parameters": {"binary_data": "yes"}}], "binary_data must be true or false"),
    ],
)
async def test_bad_requested_outputs_are_a_400_naming_the_problem(predictor, windows, outputs, words):
    response = await predictor.client.post(INFER, json={**v2_body(windows[:1]), "outputs": outputs})
    assert response.status_code == 400
    assert words in response.json()["error"]


async def test_a_point_only_version_refuses_a_request_for_its_missing_interval(
    make_predictor, crafted: RegisteredModel, windows
):
    predictor: Predictor = make_predictor(crafted)
    body = {**v2_body(windows[:1], model_alias="point_only"), "outputs": [{"name": "close_p10"}]}
    response = await predictor.client.post(INFER, json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "unknown output 'close_p10': this version answers 'close'"


async def test_model_metadata_describes_tensors_and_how_to_build_windows(predictor, registered):
    body = (await predictor.client.get("/v2/models/btc-lstm")).json()
    assert body["inputs"] == [{"name": "windows", "datatype": "FP32", "shape": [-1, WINDOW, len(FEATURES)]}]
    assert body["outputs"] == [
        {"name": "close", "datatype": "FP32", "shape": [-1], "parameters": {"quantile": 0.5}},
        {"name": "close_p10", "datatype": "FP32", "shape": [-1], "parameters": {"quantile": 0.1}},
        {"name": "close_p90", "datatype": "FP32", "shape": [-1], "parameters": {"quantile": 0.9}},
    ]
    assert body["versions"] == [registered.version_of("production")]
    assert body["parameters"] == {
        "model_version": registered.version_of("production"),
        "model_alias": "production",
        "format_version": 2,
        "window": WINDOW,
        "feature_names": list(FEATURES),
        "close_feature": "close",
        "input_domain": {
            "close": "> 0 (a price)",
            "range_hl": ">= 0",
            "hour_sin": "[-1, 1]",
            "hour_cos": "[-1, 1]",
        },
        "quantiles": [0.1, 0.5, 0.9],
        "output_names": ["close_p10", "close", "close_p90"],
        "point_output": "close",
        "point_quantile": 0.5,
    }


async def test_version_metadata_describes_that_version_without_changing_the_live_one(
    make_predictor, crafted: RegisteredModel
):
    predictor: Predictor = make_predictor(crafted)
    version = crafted.version_of("point_only")
    body = (await predictor.client.get(f"/v2/models/btc-lstm/versions/{version}")).json()
    assert body["outputs"] == [
        {"name": "close", "datatype": "FP32", "shape": [-1], "parameters": {"quantile": 0.5}}
    ]
    assert (body["parameters"]["format_version"], body["parameters"]["quantiles"]) == (1, [0.5])
    assert body["parameters"]["output_names"] == ["close"]
    assert predictor.model.live.version == crafted.version_of("production")


async def test_metadata_before_any_version_is_loaded_has_no_parameters(make_predictor, registered):
    predictor: Predictor = make_predictor(registered, load=False)
    body = (await predictor.client.get("/v2/models/btc-lstm")).json()
    assert body["inputs"][0]["shape"] == [-1, -1, -1]
    assert "parameters" not in body


async def test_metadata_of_an_unknown_version_or_model_is_a_404(predictor):
    assert (await predictor.client.get("/v2/models/btc-lstm/versions/999")).status_code == 404
    assert (await predictor.client.get("/v2/models/other")).status_code == 404
