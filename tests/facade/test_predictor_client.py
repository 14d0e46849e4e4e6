"""Decoding the predictor's infer answer: one output per quantile, binary or JSON, in any order."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from btcforecast.model import QUANTILES, output_name
from facade.predictor_client import PredictorUnavailable, decode_infer_response, quantile_of

P10 = np.array([90.0, 190.0], dtype="<f4")
MEDIAN = np.array([100.0, 200.0], dtype="<f4")
P90 = np.array([110.0, 210.0], dtype="<f4")


def binary_answer(outputs: dict[str, np.ndarray]) -> tuple[bytes, int]:
    header = {
        "outputs": [
            {
                "name": name,
                "datatype": "FP32",
                "shape": [len(v)],
                "parameters": {"binary_data_size": v.nbytes},
            }
            for name, v in outputs.items()
        ]
    }
    head = json.dumps(header).encode()
    return head + b"".join(v.tobytes() for v in outputs.values()), len(head)


def json_answer(outputs: dict[str, np.ndarray]) -> bytes:
    body = [
        {"name": n, "datatype": "FP32", "shape": [len(v)], "data": v.tolist()} for n, v in outputs.items()
    ]
    return json.dumps({"outputs": body}).encode()


def test_output_names_map_back_to_their_quantiles() -> None:
    assert quantile_of("close") == 0.5
    assert quantile_of("close_p10") == 0.1
    assert quantile_of("close_p90") == 0.9
    assert quantile_of("close_p50") is None  # the median is only ever called "close"
    assert quantile_of("predictions") is None


@pytest.mark.parametrize("quantile", [*QUANTILES, 0.05, 0.25, 0.75, 0.95])
def test_quantile_of_inverts_the_models_output_names(quantile: float) -> None:
    assert quantile_of(output_name(quantile)) == quantile


def test_the_facade_app_imports_without_torch() -> None:
    code = "import sys, facade.main; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]


def test_binary_outputs_in_any_order_become_columns_in_increasing_quantile_order() -> None:
    body, length = binary_answer({"close_p90": P90, "close": MEDIAN, "close_p10": P10})
    decoded = decode_infer_response(body, length)
    assert decoded.quantiles == (0.1, 0.5, 0.9)
    assert decoded.values.tolist() == np.column_stack([P10, MEDIAN, P90]).tolist()
    assert decoded.point.tolist() == MEDIAN.tolist()
    assert decoded.lower is not None and decoded.lower.tolist() == P10.tolist()
    assert decoded.upper is not None and decoded.upper.tolist() == P90.tolist()


def test_a_json_answer_decodes_like_a_binary_one() -> None:
    outputs = {"close": MEDIAN, "close_p10": P10, "close_p90": P90}
    body, length = binary_answer(outputs)
    from_json = decode_infer_response(json_answer(outputs), None)
    from_binary = decode_infer_response(body, length)
    assert from_json.quantiles == from_binary.quantiles
    assert from_json.values.tolist() == from_binary.values.tolist()


def test_outputs_that_carry_no_quantile_are_skipped_with_their_bytes() -> None:
    extra = np.array([7.0, 7.0, 7.0], dtype="<f4")
    body, length = binary_answer({"debug": extra, "close": MEDIAN, "close_p90": P90})
    decoded = decode_infer_response(body, length)
    assert decoded.quantiles == (0.5, 0.9)
    assert decoded.values.tolist() == np.column_stack([MEDIAN, P90]).tolist()


def test_a_point_only_answer_has_the_median_alone_and_no_interval() -> None:
    decoded = decode_infer_response(json_answer({"close": MEDIAN}), None)
    assert decoded.quantiles == (0.5,)
    assert decoded.values.shape == (2, 1)
    assert decoded.lower is None and decoded.upper is None


def test_an_answer_without_the_median_is_refused() -> None:
    with pytest.raises(PredictorUnavailable, match="no 'close' output"):
        decode_infer_response(json_answer({"close_p10": P10, "close_p90": P90}), None)


def test_outputs_of_different_lengths_are_refused() -> None:
    with pytest.raises(PredictorUnavailable, match="different lengths"):
        decode_infer_response(json_answer({"close": MEDIAN, "close_p90": P90[:1]}), None)
