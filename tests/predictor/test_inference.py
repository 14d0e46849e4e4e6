"""v1 and v2 inference in process (KServe's REST app over httpx.ASGITransport) against real MLflow."""

from __future__ import annotations

import json

import numpy as np
import pytest

from btcforecast.features import WINDOW
from tests.fixtures.registry import RegisteredModel
from tests.predictor.conftest import Predictor, binary_outputs, v2_binary, v2_body

INFER = "/v2/models/btc-lstm/infer"


async def test_v2_json_answers_the_median_and_the_80_percent_interval_the_core_model_predicts(
    predictor, registered, windows, expected
):
    response = await predictor.client.post(INFER, json=v2_body(windows))
    assert response.status_code == 200, response.text
    body = response.json()
    version = registered.version_of("production")
    assert body["model_version"] == version
    assert body["parameters"] == {"model_alias": "production", "model_version": version}
    assert [(o["name"], o["datatype"], o["shape"]) for o in body["outputs"]] == [
        ("close", "FP32", [len(windows)]),
        ("close_p10", "FP32", [len(windows)]),
        ("close_p90", "FP32", [len(windows)]),
    ]
    for output in body["outputs"]:
        np.testing.assert_array_equal(
            np.asarray(output["data"], np.float32), expected(version)[output["name"]]
        )


async def test_v1_answers_the_median_as_predictions_and_the_interval_beside_it(
    predictor, registered, windows, expected
):
    response = await predictor.client.post(
        "/v1/models/btc-lstm:predict", json={"instances": windows.tolist()}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"predictions", "close_p10", "close_p90", "model_alias", "model_version"}
    assert body["model_version"] == registered.version_of("production")
    core = expected(body["model_version"])
    np.testing.assert_array_equal(np.asarray(body["predictions"], np.float32), core["close"])
    np.testing.assert_array_equal(np.asarray(body["close_p10"], np.float32), core["close_p10"])
    np.testing.assert_array_equal(np.asarray(body["close_p90"], np.float32), core["close_p90"])


async def test_v2_binary_tensors_in_and_out_answer_the_same(predictor, registered, windows, expected):
    content, headers = v2_binary(windows, binary_output=True)
    response = await predictor.client.post(INFER, content=content, headers=headers)
    assert response.status_code == 200, response.text
    outputs = binary_outputs(response)
    assert list(outputs) == ["close", "close_p10", "close_p90"]
    for name, values in outputs.items():
        np.testing.assert_array_equal(values, expected(registered.version_of("production"))[name])


async def test_v2_binary_input_with_json_output(predictor, registered, windows, expected):
    content, headers = v2_binary(windows)
    response = await predictor.client.post(INFER, content=content, headers=headers)
    assert response.status_code == 200, response.text
    data = np.asarray(response.json()["outputs"][0]["data"], np.float32)
    np.testing.assert_array_equal(data, expected(registered.version_of("production"))["close"])


def _bad_v2(windows: np.ndarray) -> list[tuple[str, dict | bytes, dict, str]]:
    one = windows[:1]
    body = v2_body(one)
    return [
        (
            "wrong datatype",
            {**body, "inputs": [{**body["inputs"][0], "datatype": "FP64"}]},
            {},
            "datatype FP32",
        ),
        ("wrong window", v2_body(windows[:1, :5]), {}, "window length T = 5"),
        ("wrong features", v2_body(windows[:1, :, :5]), {}, "F = 5 features"),
        ("no windows", v2_body(windows[:0]), {}, "N = 0"),
        ("too many", v2_body(np.repeat(one, 11, axis=0)), {}, "above the maximum of 10"),
        ("nan", v2_body(np.where(np.arange(7) == 2, np.nan, one)), {}, "NaN or infinite"),
        ("inf", v2_body(np.where(np.arange(7) == 2, np.inf, one)), {}, "NaN or infinite"),
        ("malformed json", b'{"inputs": [', {"content-type": "application/json"}, "malformed JSON"),
        ("empty body", b"", {"content-type": "application/json"}, "empty request body"),
        ("no inputs", {"inputs": []}, {}, "missing inputs"),
        ("inputs missing", {"id": "1"}, {}, "missing inputs"),
        ("wrong input name", {"inputs": [{**body["inputs"][0], "name": "x"}]}, {}, "missing input 'windows'"),
        ("shape mismatch", {"inputs": [{**body["inputs"][0], "shape": [2, WINDOW, 7]}]}, {}, "shape"),
        ("strings", {"inputs": [{**body["inputs"][0], "data": ["a"] * (WINDOW * 7)}]}, {}, "numbers"),
        ("bad version", v2_body(one, model_version="latest"), {}, "model_version"),
        ("bad alias", v2_body(one, model_alias="../etc"), {}, "alias"),
        ("not an object", [1, 2], {}, "JSON object"),
    ]


@pytest.mark.parametrize("case", range(17))
async def test_every_bad_v2_input_is_a_400_naming_the_problem(make_predictor, registered, windows, case):
    predictor: Predictor = make_predictor(registered, max_windows=10)
    name, body, headers, words = _bad_v2(windows)[case]
    content = body if isinstance(body, bytes) else json.dumps(body).encode()  # json.dumps writes NaN
    response = await predictor.client.post(
        INFER, content=content, headers=headers or {"content-type": "application/json"}
    )
    assert response.status_code == 400, (name, response.text)
    assert words in response.json()["error"], (name, response.json())


@pytest.mark.parametrize(
    ("content", "headers", "words"),
    [
        (b"{nope", {"content-type": "application/json"}, "Unrecognized request format"),
        (b'{"instances": 3}', {"content-type": "application/json"}, "instances"),
        (b'{"rows": []}', {"content-type": "application/json"}, 'missing "instances"'),
        (b'{"instances": [[[1, 2]]]}', {"content-type": "application/json"}, "window length"),
        (b'{"instances": []}', {"content-type": "application/json"}, "N = 0"),
        (b'{"instances": [[1], [1, 2]]}', {"content-type": "application/json"}, "rectangular"),
        (b"instances", {"content-type": "text/plain"}, "JSON object"),
    ],
)
async def test_every_bad_v1_input_is_a_400_naming_the_problem(predictor, content, headers, words):
    response = await predictor.client.post("/v1/models/btc-lstm:predict", content=content, headers=headers)
    assert response.status_code == 400, response.text
    assert words in response.json()["error"]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"inference-header-content-length": "abc"}, "must be an integer"),
        ({"inference-header-content-length": "99999"}, "outside the body"),
    ],
)
async def test_bad_binary_framing_is_a_400(predictor, windows, extra, words):
    content, headers = v2_binary(windows[:2])
    response = await predictor.client.post(INFER, content=content, headers={**headers, **extra})
    assert response.status_code == 400
    assert words in response.json()["error"]


async def test_binary_size_that_does_not_match_the_shape_is_a_400(predictor, windows):
    content, headers = v2_binary(windows[:2])
    response = await predictor.client.post(INFER, content=content[:-4], headers=headers)
    assert response.status_code == 400
    assert "binary" in response.json()["error"]


async def test_a_version_named_in_the_path_is_served_without_changing_the_live_model(
    predictor, registered: RegisteredModel, windows, expected
):
    version = registered.version_of("backtest_20250327")
    response = await predictor.client.post(
        f"/v2/models/btc-lstm/versions/{version}/infer", json=v2_body(windows)
    )
    assert response.status_code == 200, response.text
    assert response.json()["model_version"] == version
    np.testing.assert_array_equal(
        np.asarray(response.json()["outputs"][0]["data"], np.float32), expected(version)["close"]
    )
    serving = (await predictor.client.get("/v2/models/btc-lstm/serving")).json()
    assert serving["model_version"] == registered.version_of("production")
    assert version in serving["cached_versions"]


async def test_an_alias_named_in_parameters_is_served_in_either_form(predictor, registered, windows):
    for alias in ("20250403", "backtest_20250403"):
        response = await predictor.client.post(INFER, json=v2_body(windows[:3], model_alias=alias))
        assert response.status_code == 200, response.text
        assert response.json()["model_version"] == registered.version_of("backtest_20250403")
        assert response.json()["parameters"]["model_alias"] == "backtest_20250403"


async def test_a_v1_request_may_name_a_version(predictor, registered, windows):
    version = registered.version_of("backtest_20250320")
    body = {"instances": windows[:2].tolist(), "parameters": {"model_version": version}}
    response = await predictor.client.post("/v1/models/btc-lstm:predict", json=body)
    assert response.json()["model_version"] == version


async def test_unknown_version_or_alias_in_a_request_is_a_404(predictor, windows):
    response = await predictor.client.post(
        "/v2/models/btc-lstm/versions/999/infer", json=v2_body(windows[:1])
    )
    assert response.status_code == 404
    assert "999" in response.json()["error"]
    response = await predictor.client.post(INFER, json=v2_body(windows[:1], model_alias="nosuch"))
    assert response.status_code == 404
    assert "nosuch" in response.json()["error"]


async def test_unknown_model_name_is_a_404(predictor, windows):
    response = await predictor.client.post("/v2/models/other/infer", json=v2_body(windows[:1]))
    assert response.status_code == 404


async def test_serving_reports_alias_version_features_window_and_synthetic(predictor, registered, windows):
    body = (await predictor.client.get("/v2/models/btc-lstm/serving")).json()
    assert body["ready"] is True
    assert (body["model_alias"], body["model_version"]) == ("production", registered.version_of("production"))
    assert body["feature_names"][0] == "close" and len(body["feature_names"]) == windows.shape[2]
    assert body["window"] == windows.shape[1]
    assert isinstance(body["synthetic"], bool)
    assert (body["quantiles"], body["output_names"]) == ([0.1, 0.5, 0.9], ["close_p10", "close", "close_p90"])


async def test_health_live_and_ready_when_loaded(predictor):
    assert (await predictor.client.get("/v2/health/live")).status_code == 200
    assert (await predictor.client.get("/v2/health/ready")).status_code == 200


async def test_not_loaded_is_live_but_not_ready_and_infer_is_503(make_predictor, registered, windows):
    predictor = make_predictor(registered, load=False)
    assert (await predictor.client.get("/v2/health/live")).status_code == 200
    assert (await predictor.client.get("/v2/health/ready")).status_code == 503
    assert (await predictor.client.post(INFER, json=v2_body(windows[:1]))).status_code == 503
