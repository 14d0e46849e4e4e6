"""Turn a request into the float32 windows array the model takes, or fail with a 400 naming the problem.

Plain functions, no server: the v2 body decoder (JSON, or JSON plus the binary tensor data
extension), the extraction of ``windows`` from a v2 ``InferRequest`` or a v1 dict, the shared
shape/value checks, and the optional version or alias a request names. Every failure is KServe's
``InvalidInput``, which KServe's REST server answers with 400 and ``{"error": message}``.

Values are checked against the features' domains where the domain is certain, not learned: the close
is a price (> 0; the model divides by it and takes its log, so 0 or a negative close would come back
as a NaN or a negative forecast), ``range_hl`` is log(high / low) >= 0 (market bars are refused when
high < low), and the hour-of-day features are a sine and a cosine. Other features (returns, candle
body, volume z-score) can take any finite value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import orjson
from kserve.constants.constants import INFERENCE_CONTENT_LENGTH_HEADER
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest, RequestedOutput

from btcforecast.alias_names import InvalidAliasError, normalize_alias

INPUT_NAME = "windows"
DATATYPE = "FP32"


DOMAINS: dict[str, tuple[float, float, str]] = {
    "range_hl": (0.0, math.inf, "must be >= 0 (it is log(high / low) and high >= low)"),
    "hour_sin": (-1.0, 1.0, "must lie in [-1, 1] (the sine of the hour of day)"),
    "hour_cos": (-1.0, 1.0, "must lie in [-1, 1] (the cosine of the hour of day)"),
}
"""Features with a certain range, by name: (lowest, highest, what the error says). The close is > 0."""


@dataclass(frozen=True)
class WindowSpec:
    """What the loaded model accepts: windows of ``window`` hours of ``feature_names``."""

    window: int
    feature_names: tuple[str, ...]
    close_index: int = 0

    @property
    def n_features(self) -> int:
        return len(self.feature_names)


def domain_description(feature_names: tuple[str, ...] | list[str], close_index: int) -> dict[str, str]:
    """Feature -> its domain, for the features that have one (the model metadata shows it)."""
    described = {feature_names[close_index]: "> 0 (a price)"}
    for name in feature_names:
        if name in DOMAINS:
            low, high, _ = DOMAINS[name]
            described[name] = f">= {low:g}" if high == math.inf else f"[{low:g}, {high:g}]"
    return described


def _first(bad: np.ndarray) -> tuple[int, int]:
    """(window, hour) of the first True in an [N, T] mask."""
    i, h = (int(x) for x in np.argwhere(bad)[0])
    return i, h


def check_domain(windows: np.ndarray, spec: WindowSpec) -> None:
    """InvalidInput naming window, hour and feature of the first value outside its feature's domain.

    ``windows`` is finite float32 [N, T, F]; hour h is the h-th row of its window (0 = oldest).
    """
    close_name = spec.feature_names[spec.close_index]
    close = windows[:, :, spec.close_index]
    not_positive = close <= 0
    if not_positive.any():
        i, h = _first(not_positive)
        raise InvalidInput(f"window {i}, hour {h}: {close_name} must be a positive price, got {close[i, h]}")
    for k, name in enumerate(spec.feature_names):
        if name not in DOMAINS or k == spec.close_index:
            continue
        low, high, rule = DOMAINS[name]
        values = windows[:, :, k]
        outside = (values < low) | (values > high)
        if outside.any():
            i, h = _first(outside)
            raise InvalidInput(f"window {i}, hour {h}: {name} {rule}, got {values[i, h]}")


@lru_cache(maxsize=64)
def accepted_bounds(feature_names: tuple[str, ...], close_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest accepted float32 value of each feature: finite, and inside its domain.

    A window passes every value check exactly when each value lies within its feature's bounds (NaN
    fails both comparisons, infinities lie beyond the largest finite float32, the close must be at
    least the smallest positive float32), so a valid batch is accepted with one comparison pass.
    """
    largest = np.finfo(np.float32).max
    low = np.full(len(feature_names), -largest, dtype=np.float32)
    high = np.full(len(feature_names), largest, dtype=np.float32)
    for k, name in enumerate(feature_names):
        if name in DOMAINS:
            low[k], high[k] = max(DOMAINS[name][0], -largest), min(DOMAINS[name][1], largest)
    low[close_index], high[close_index] = np.finfo(np.float32).smallest_subnormal, largest
    return low, high


def check_windows(windows: np.ndarray, spec: WindowSpec, max_windows: int) -> np.ndarray:
    """``windows`` as C-contiguous float32 [N, T, F] if it fits the model, else InvalidInput.

    Valid windows take one pass over :func:`accepted_bounds`; the checks that name the first bad
    value (NaN or infinite first, then the domains) run only when that pass finds one.
    """
    if windows.ndim >= 1 and windows.shape[0] == 0:
        raise InvalidInput("windows is empty (N = 0): send at least one window")
    if windows.ndim != 3:
        raise InvalidInput(f"windows must have shape [N, T, F]; got shape {list(windows.shape)}")
    n, t, f = windows.shape
    if n == 0:
        raise InvalidInput("windows is empty (N = 0): send at least one window")
    if n > max_windows:
        raise InvalidInput(f"N = {n} windows is above the maximum of {max_windows} per request")
    if t != spec.window:
        raise InvalidInput(f"window length T = {t} does not match the model's window of {spec.window} hours")
    if f != spec.n_features:
        raise InvalidInput(
            f"F = {f} features does not match the model's {spec.n_features} ({', '.join(spec.feature_names)})"
        )
    windows = np.ascontiguousarray(windows, dtype=np.float32)
    low, high = accepted_bounds(spec.feature_names, spec.close_index)
    if ((windows >= low) & (windows <= high)).all():
        return windows
    finite = np.isfinite(windows)
    if not finite.all():
        i, h, k = (int(x) for x in np.argwhere(~finite)[0])
        raise InvalidInput(
            "windows contain NaN or infinite values "
            f"(first at window {i}, hour {h}, feature {spec.feature_names[k]})"
        )
    check_domain(windows, spec)
    return windows


def _numeric_array(data: Any, what: str) -> np.ndarray:
    try:
        raw = np.asarray(data)
    except ValueError as e:
        raise InvalidInput(f"{what} is not a rectangular array of numbers: {e}") from e
    if raw.dtype.kind not in "iuf":
        raise InvalidInput(f"{what} must hold numbers only (got {raw.dtype.kind!r} data)")
    return raw.astype(np.float32, copy=False)


def windows_from_v1(body: Any, spec: WindowSpec, max_windows: int) -> np.ndarray:
    """The v1 ``{"instances": [[[...]]]}`` body as checked windows."""
    if not isinstance(body, Mapping):
        raise InvalidInput('the v1 body must be a JSON object {"instances": [[[...]]]}')
    if "instances" not in body:
        raise InvalidInput('missing "instances": send {"instances": [N windows of T hours of F features]}')
    instances = body["instances"]
    if not isinstance(instances, list):
        raise InvalidInput('"instances" must be a list of windows')
    return check_windows(_numeric_array(instances, '"instances"'), spec, max_windows)


def windows_from_v2(request: InferRequest, spec: WindowSpec, max_windows: int) -> np.ndarray:
    """The v2 input tensor ``windows`` (FP32 [N, T, F]) as checked windows."""
    if not request.inputs:
        raise InvalidInput(f"missing inputs: send one input tensor named {INPUT_NAME!r}")
    tensor = next((i for i in request.inputs if i.name == INPUT_NAME), None)
    if tensor is None:
        names = ", ".join(repr(i.name) for i in request.inputs)
        raise InvalidInput(f"missing input {INPUT_NAME!r} (got {names})")
    if tensor.datatype != DATATYPE:
        raise InvalidInput(f"input {INPUT_NAME!r} must have datatype {DATATYPE}, got {tensor.datatype}")
    shape = list(tensor.shape)
    if tensor.data is not None and not isinstance(tensor.data, np.ndarray):
        array = _numeric_array(tensor.data, f"input {INPUT_NAME!r} data")
        if array.size != math.prod(shape):
            raise InvalidInput(
                f"input {INPUT_NAME!r} has {array.size} values but its shape {shape} needs {math.prod(shape)}"
            )
        array = array.reshape(shape)
    elif isinstance(tensor.data, np.ndarray):
        array = tensor.data
    else:
        try:
            array = tensor.as_numpy()
        except ValueError as e:
            raise InvalidInput(f"input {INPUT_NAME!r} does not match its shape {shape}: {e}") from e
    return check_windows(array, spec, max_windows)


def _loads(raw: bytes, what: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        # Python's json writes NaN/Infinity by default; parse them so the error can name them.
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput(f"malformed JSON in {what}: {e}") from e


def _shape(value: Any, name: str) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value
    ):
        raise InvalidInput(f"input {name!r}: shape must be a list of non-negative integers")
    return value


def decode_v2(body: bytes, headers: Mapping[str, str], model_name: str) -> InferRequest:
    """A v2 REST body, JSON or JSON + binary tensors (``inference-header-content-length``)."""
    header = headers.get(INFERENCE_CONTENT_LENGTH_HEADER)
    if header is None:
        json_part, binary = body, b""
    else:
        try:
            json_length = int(header)
        except ValueError as e:
            raise InvalidInput(f"{INFERENCE_CONTENT_LENGTH_HEADER} must be an integer, got {header!r}") from e
        if not 0 < json_length <= len(body):
            raise InvalidInput(
                f"{INFERENCE_CONTENT_LENGTH_HEADER} = {json_length} is outside the body of {len(body)} bytes"
            )
        json_part, binary = body[:json_length], body[json_length:]
    if not json_part.strip():
        raise InvalidInput(f"empty request body: send a v2 inference request with an input {INPUT_NAME!r}")
    doc = _loads(json_part, "the request body")
    if not isinstance(doc, dict):
        raise InvalidInput('the v2 request must be a JSON object with an "inputs" list')
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput(f'missing inputs: send "inputs": [{{"name": {INPUT_NAME!r}, ...}}]')
    parameters = doc.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidInput('"parameters" must be a JSON object')
    offset = 0
    infer_inputs = []
    for raw in inputs:
        if (
            not isinstance(raw, dict)
            or not isinstance(raw.get("name"), str)
            or not isinstance(raw.get("datatype"), str)
        ):
            raise InvalidInput("every input needs a string name and datatype, a shape and data")
        name = raw["name"]
        shape = _shape(raw.get("shape"), name)
        params = raw.get("parameters") or {}
        if not isinstance(params, dict):
            raise InvalidInput(f"input {name!r}: parameters must be a JSON object")
        tensor = InferInput(name=name, shape=shape, datatype=raw["datatype"], parameters=params)
        if "data" in raw:
            tensor.data = raw["data"]
        elif "binary_data_size" in params:
            size = params["binary_data_size"]
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise InvalidInput(
                    f"input {name!r}: binary_data_size {size!r} does not fit "
                    f"the {len(binary)} binary bytes sent"
                )
            chunk = binary[offset : offset + size]
            offset += size
            if raw["datatype"] == DATATYPE:
                if size != 4 * math.prod(shape):
                    raise InvalidInput(
                        f"input {name!r}: {size} bytes do not hold an FP32 tensor of shape {shape}"
                    )
                tensor.data = np.frombuffer(chunk, dtype="<f4").reshape(shape)
            else:
                tensor.data = chunk  # refused by datatype later, with the datatype named
        else:
            raise InvalidInput(f"input {name!r} has neither data nor parameters.binary_data_size")
        infer_inputs.append(tensor)
    if offset != len(binary):
        raise InvalidInput(f"{len(binary) - offset} binary bytes after the JSON are not claimed by any input")
    return InferRequest(
        model_name=model_name,
        infer_inputs=infer_inputs,
        request_id=str(doc["id"]) if doc.get("id") is not None else None,
        parameters=parameters,
        request_outputs=_requested_outputs(doc.get("outputs")),
    )


def _requested_outputs(outputs: Any) -> list[RequestedOutput] | None:
    """The request's ``outputs`` (names and parameters such as ``binary_data``); None = all outputs."""
    if outputs is None or outputs == []:
        return None
    if not isinstance(outputs, list):
        raise InvalidInput('"outputs" must be a list of {"name": ...} objects')
    requested = []
    for raw in outputs:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise InvalidInput('every requested output needs a string "name"')
        params = raw.get("parameters") or {}
        if not isinstance(params, dict):
            raise InvalidInput(f"output {raw['name']!r}: parameters must be a JSON object")
        requested.append(RequestedOutput(name=raw["name"], parameters=params))
    return requested


def requested_version(
    parameters: Mapping[str, Any] | None, path_version: str | None = None
) -> tuple[str | None, str | None]:
    """(alias, version) a request names: ``parameters.model_alias`` / ``model_version`` or the path."""
    parameters = parameters or {}
    if not isinstance(parameters, Mapping):
        raise InvalidInput('"parameters" must be a JSON object')
    version = parameters.get("model_version")
    if version is not None:
        if (
            isinstance(version, bool)
            or not isinstance(version, str | int)
            or not str(version).strip().isdigit()
        ):
            raise InvalidInput(f"model_version must be a version number, got {version!r}")
        version = str(version).strip()
    if path_version is not None:
        if not path_version.isdigit():
            raise InvalidInput(f"model version in the path must be a number, got {path_version!r}")
        if version is not None and version != path_version:
            raise InvalidInput(
                f"the path names version {path_version} but parameters.model_version is {version}"
            )
        version = path_version
    alias = parameters.get("model_alias")
    if alias is not None:
        if not isinstance(alias, str | int) or isinstance(alias, bool):
            raise InvalidInput(f"model_alias must be a string, got {alias!r}")
        try:
            alias = normalize_alias(str(alias))
        except InvalidAliasError as e:
            raise InvalidInput(str(e)) from e
    return alias, version
