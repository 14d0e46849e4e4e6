"""Turn a request into the float32 windows array the model takes, or fail with a 400 naming the problem.

Plain functions, no server: the v2 body decoder (JSON, or JSON plus the binary tensor data
extension), the extraction of ``windows`` from a v2 ``InferRequest`` or a v1 dict, the shared
shape/value checks, and the optional version or alias a request names. Every failure is KServe's
``InvalidInput``, which KServe's REST server answers with 400 and ``{"error": message}``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from kserve.constants.constants import INFERENCE_CONTENT_LENGTH_HEADER
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest, RequestedOutput

from btcforecast.aliases import InvalidAliasError, normalize_alias

INPUT_NAME = "windows"
OUTPUT_NAME = "close"
DATATYPE = "FP32"


@dataclass(frozen=True)
class WindowSpec:
    """What the loaded model accepts: windows of ``window`` hours of ``feature_names``."""

    window: int
    feature_names: tuple[str, ...]

    @property
    def n_features(self) -> int:
        return len(self.feature_names)


def check_windows(windows: np.ndarray, spec: WindowSpec, max_windows: int) -> np.ndarray:
    """``windows`` as C-contiguous float32 [N, T, F] if it fits the model, else InvalidInput."""
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
    finite = np.isfinite(windows)
    if not finite.all():
        i, h, k = (int(x) for x in np.argwhere(~finite)[0])
        raise InvalidInput(
            "windows contain NaN or infinite values "
            f"(first at window {i}, hour {h}, feature {spec.feature_names[k]})"
        )
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
    outputs = doc.get("outputs")
    requested = None
    if isinstance(outputs, list) and outputs:
        requested = [
            RequestedOutput(name=str(o.get("name")), parameters=o.get("parameters") or {})
            for o in outputs
            if isinstance(o, dict)
        ]
    return InferRequest(
        model_name=model_name,
        infer_inputs=infer_inputs,
        request_id=str(doc["id"]) if doc.get("id") is not None else None,
        parameters=parameters,
        request_outputs=requested,
    )


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
