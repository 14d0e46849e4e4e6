"""The request decoder and the window checks as plain functions: no server, one refusal each."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from kserve.errors import InvalidInput

from btcforecast.features import FEATURES
from predictor.validation import (
    WindowSpec,
    check_windows,
    decode_v2,
    requested_version,
    windows_from_v1,
    windows_from_v2,
)

SPEC = WindowSpec(window=12, feature_names=FEATURES, close_index=FEATURES.index("close"))
HEADER = "inference-header-content-length"


def valid_windows(n: int = 2) -> np.ndarray:
    windows = np.zeros((n, SPEC.window, SPEC.n_features), dtype=np.float32)
    windows[..., SPEC.close_index] = 100.0
    return windows


def v2_json(windows: np.ndarray, **extra: object) -> bytes:
    tensor = {"name": "windows", "shape": list(windows.shape), "datatype": "FP32", "data": windows.tolist()}
    return json.dumps({"inputs": [tensor], **extra}).encode()


def v2_binary(windows: np.ndarray) -> tuple[bytes, dict[str, str]]:
    data = windows.astype("<f4").tobytes()
    tensor = {
        "name": "windows",
        "shape": list(windows.shape),
        "datatype": "FP32",
        "parameters": {"binary_data_size": len(data)},
    }
    head = json.dumps({"inputs": [tensor]}).encode()
    return head + data, {HEADER: str(len(head))}


def test_a_json_v2_body_decodes_to_the_windows_it_carries() -> None:
    request = decode_v2(v2_json(valid_windows()), {}, "btc-lstm")
    assert windows_from_v2(request, SPEC, 10).tolist() == valid_windows().tolist()


def test_a_binary_v2_body_decodes_to_the_same_windows() -> None:
    body, headers = v2_binary(valid_windows())
    assert (
        windows_from_v2(decode_v2(body, headers, "btc-lstm"), SPEC, 10).tolist() == valid_windows().tolist()
    )


def test_the_request_id_and_parameters_are_kept() -> None:
    request = decode_v2(v2_json(valid_windows(), id="r-1", parameters={"model_version": "3"}), {}, "btc-lstm")
    assert request.id == "r-1" and request.parameters == {"model_version": "3"}


@pytest.mark.parametrize(
    ("body", "headers", "problem"),
    [
        (b"", {}, "empty request body"),
        (b"{not json", {}, "malformed JSON"),
        (b"[]", {}, "must be a JSON object"),
        (b'{"inputs": []}', {}, "missing inputs"),
        (b'{"inputs": [{"name": "windows"}]}', {}, "string name and datatype"),
        (b'{"inputs": [{"name": "w", "datatype": "FP32", "shape": [-1]}]}', {}, "non-negative integers"),
        (b'{"inputs": [{"name": "w", "datatype": "FP32", "shape": [1]}]}', {}, "neither data nor"),
        (b"{}", {HEADER: "x"}, "must be an integer"),
        (b"{}", {HEADER: "99"}, "outside the body"),
    ],
)
def test_a_malformed_v2_body_is_refused_naming_the_problem(
    body: bytes, headers: dict[str, str], problem: str
) -> None:
    with pytest.raises(InvalidInput, match=problem):
        decode_v2(body, headers, "btc-lstm")


def test_binary_bytes_no_input_claims_are_refused() -> None:
    body, headers = v2_binary(valid_windows())
    with pytest.raises(InvalidInput, match="4 binary bytes after the JSON are not claimed"):
        decode_v2(body + b"\0\0\0\0", headers, "btc-lstm")


def test_a_binary_size_that_does_not_hold_the_shape_is_refused() -> None:
    body, headers = v2_binary(valid_windows())
    head_length = int(headers[HEADER])
    doc = json.loads(body[:head_length])
    doc["inputs"][0]["shape"] = [3, SPEC.window, SPEC.n_features]
    head = json.dumps(doc).encode()
    with pytest.raises(InvalidInput, match="do not hold an FP32 tensor of shape"):
        decode_v2(head + body[head_length:], {HEADER: str(len(head))}, "btc-lstm")


@pytest.mark.parametrize(
    ("shape", "problem"),
    [
        ((0, 12, 7), "windows is empty"),
        ((12, 7), r"must have shape \[N, T, F\]"),
        ((11, 12, 7), "above the maximum of 10"),
        ((1, 24, 7), "T = 24 does not match the model's window of 12 hours"),
        ((1, 12, 6), "F = 6 features does not match the model's 7"),
    ],
)
def test_windows_of_the_wrong_shape_are_refused(shape: tuple[int, ...], problem: str) -> None:
    windows = np.ones(shape, dtype=np.float32)
    with pytest.raises(InvalidInput, match=problem):
        check_windows(windows, SPEC, max_windows=10)


def test_a_non_finite_value_is_refused_naming_where_it_is() -> None:
    windows = valid_windows()
    windows[1, 4, FEATURES.index("volume_z")] = np.nan
    with pytest.raises(InvalidInput, match="first at window 1, hour 4, feature volume_z"):
        check_windows(windows, SPEC, max_windows=10)


def test_v1_instances_become_the_same_windows() -> None:
    assert (
        windows_from_v1({"instances": valid_windows().tolist()}, SPEC, 10).tolist()
        == valid_windows().tolist()
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "must be a JSON object"),
        ({}, 'missing "instances"'),
        ({"instances": "x"}, "must be a list of windows"),
        ({"instances": [["a"]]}, "must hold numbers only"),
    ],
)
def test_a_malformed_v1_body_is_refused(body: object, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        windows_from_v1(body, SPEC, 10)


def test_a_tensor_of_another_datatype_is_refused() -> None:
    doc = json.loads(v2_json(valid_windows()))
    doc["inputs"][0]["datatype"] = "FP64"
    with pytest.raises(InvalidInput, match="must have datatype FP32, got FP64"):
        windows_from_v2(decode_v2(json.dumps(doc).encode(), {}, "btc-lstm"), SPEC, 10)


def test_a_missing_windows_input_is_refused_naming_what_came() -> None:
    doc = json.loads(v2_json(valid_windows()))
    doc["inputs"][0]["name"] = "x"
    with pytest.raises(InvalidInput, match="missing input 'windows' \\(got 'x'\\)"):
        windows_from_v2(decode_v2(json.dumps(doc).encode(), {}, "btc-lstm"), SPEC, 10)


def test_a_request_names_a_version_by_parameter_or_path() -> None:
    assert requested_version({"model_version": 3}) == (None, "3")
    assert requested_version(None, "4") == (None, "4")


def test_a_bare_date_alias_means_its_backtest_alias() -> None:
    assert requested_version({"model_alias": "20250327"}) == ("backtest_20250327", None)


@pytest.mark.parametrize(
    ("parameters", "path", "problem"),
    [
        ({"model_version": "v3"}, None, "must be a version number"),
        ({"model_version": True}, None, "must be a version number"),
        ({}, "x", "must be a number"),
        ({"model_version": "3"}, "4", "the path names version 4 but parameters.model_version is 3"),
        ({"model_alias": ""}, None, "alias is empty"),
        ({"model_alias": ["a"]}, None, "must be a string"),
    ],
)
def test_a_version_or_alias_that_cannot_exist_is_refused(
    parameters: dict[str, object], path: str | None, problem: str
) -> None:
    with pytest.raises(InvalidInput, match=problem):
        requested_version(parameters, path)


def test_values_on_the_edges_of_their_domains_are_accepted() -> None:
    windows = valid_windows(3)
    windows[0, :, SPEC.close_index] = np.finfo(np.float32).smallest_subnormal  # the smallest positive price
    windows[1, :, FEATURES.index("hour_sin")] = 1.0
    windows[1, :, FEATURES.index("hour_cos")] = -1.0
    windows[2, :, FEATURES.index("range_hl")] = 0.0
    windows[2, :, FEATURES.index("volume_z")] = np.finfo(np.float32).max  # finite: any value goes

    assert np.array_equal(check_windows(windows, SPEC, 10), windows)


@pytest.mark.parametrize(
    ("feature", "value", "named"),
    [
        ("close", 0.0, "close must be a positive price"),
        ("hour_sin", np.nextafter(np.float32(1.0), np.float32(2.0)), "hour_sin must lie in [-1, 1]"),
        ("range_hl", -np.finfo(np.float32).smallest_subnormal, "range_hl must be >= 0"),
        ("volume_z", np.inf, "NaN or infinite"),
    ],
)
def test_a_value_just_past_its_domain_is_refused(feature: str, value: float, named: str) -> None:
    windows = valid_windows(2)
    windows[1, 5, FEATURES.index(feature)] = value

    with pytest.raises(InvalidInput, match=re.escape(named)):
        check_windows(windows, SPEC, 10)
