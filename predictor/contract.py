"""What the predictor answers, as plain functions: output names and order, v1 fields, v2 outputs, metadata.

A version predicts quantiles of the next hour's close (``ModelConfig.quantiles``, 10/50/90% for a
format-2 version, the median alone for format 1). Each quantile is one output, named by
``btcforecast.model.output_name``: ``close`` (the median, the point forecast served since the first
version), ``close_p10``, ``close_p90``. Outputs are listed ``close`` first (so a client that reads the
first output still gets the point forecast), then the others in increasing quantile order.

KServe 0.21's model metadata has no ``parameters`` (its ``ModelMetadataResponse`` holds name, versions,
platform, inputs, outputs); :func:`model_metadata` adds them as the open inference protocol's optional
``parameters`` object (as MLServer does), so a client can build windows without reading our code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, RequestedOutput

from btcforecast.model import POINT_QUANTILE, ModelConfig
from predictor.validation import DATATYPE, INPUT_NAME, domain_description

V1_POINT_FIELD = "predictions"


def output_order(config: ModelConfig) -> list[tuple[str, int]]:
    """(output name, column of the [N, Q] quantiles) in answer order: ``close`` first, then by quantile."""
    point = config.point_index
    others = [i for i in range(len(config.quantiles)) if i != point]
    return [(config.output_names[i], i) for i in (point, *others)]


def v1_answer(quantiles: np.ndarray, config: ModelConfig, labels: dict[str, str | None]) -> dict[str, Any]:
    """``predictions`` (the median [N], as ever) plus one list per other quantile, and the labels."""
    answer: dict[str, Any] = {}
    for name, column in output_order(config):
        answer[V1_POINT_FIELD if column == config.point_index else name] = quantiles[:, column].tolist()
    return {**answer, **labels}


def v2_outputs(quantiles: np.ndarray, config: ModelConfig) -> list[InferOutput]:
    """One FP32 [N] output per quantile, in answer order."""
    return [
        InferOutput(
            name=name,
            shape=[int(quantiles.shape[0])],
            datatype=DATATYPE,
            data=np.ascontiguousarray(quantiles[:, column]),
        )
        for name, column in output_order(config)
    ]


def requested_outputs(
    requested: Sequence[RequestedOutput] | None, config: ModelConfig, binary_default: bool
) -> list[RequestedOutput] | None:
    """The outputs a v2 request names, each with its ``binary_data`` made explicit; None = all of them.

    The binary tensor extension says an output's own ``binary_data`` overrides the request's
    ``binary_data_output``; KServe 0.21 reads only the former once outputs are named (it would answer
    JSON for ``"outputs": [{"name": "close"}]`` with ``binary_data_output: true``), so the default is
    written into each requested output here. Unknown or repeated names are a 400.
    """
    if not requested:
        return None
    names = [name for name, _ in output_order(config)]
    seen: set[str] = set()
    resolved = []
    for output in requested:
        if output.name not in names:
            raise InvalidInput(
                f"unknown output {output.name!r}: this version answers {', '.join(repr(n) for n in names)}"
            )
        if output.name in seen:
            raise InvalidInput(f"output {output.name!r} is requested twice")
        seen.add(output.name)
        binary = output.binary_data
        if binary is None:
            binary = bool(binary_default)
        elif not isinstance(binary, bool):
            raise InvalidInput(f"output {output.name!r}: parameters.binary_data must be true or false")
        resolved.append(RequestedOutput(output.name, {**(output.parameters or {}), "binary_data": binary}))
    return resolved


def first_non_finite(quantiles: np.ndarray, config: ModelConfig) -> str | None:
    """'window i: close_p90 = inf' for the first window whose forecast is not a finite number, else None."""
    finite = np.isfinite(quantiles)
    if finite.all():
        return None
    window, column = (int(x) for x in np.argwhere(~finite)[0])
    return f"window {window}: {config.output_names[column]} = {quantiles[window, column]}"


def input_types(config: ModelConfig | None) -> list[dict[str, Any]]:
    window, features = (config.window, config.n_features) if config else (-1, -1)
    return [{"name": INPUT_NAME, "datatype": DATATYPE, "shape": [-1, window, features]}]


def output_types(config: ModelConfig | None) -> list[dict[str, Any]]:
    names = [name for name, _ in output_order(config)] if config else ["close"]
    return [{"name": name, "datatype": DATATYPE, "shape": [-1]} for name in names]


def metadata_parameters(config: ModelConfig, version: str, alias: str | None) -> dict[str, Any]:
    """What a client needs to build windows and read the answer, for the version described."""
    return {
        "model_version": version,
        "model_alias": alias,
        "format_version": config.format_version,
        "window": config.window,
        "feature_names": list(config.feature_names),
        "close_feature": config.feature_names[config.close_index],
        "input_domain": domain_description(config.feature_names, config.close_index),
        "quantiles": list(config.quantiles),
        "output_names": list(config.output_names),
        "point_output": config.output_names[config.point_index],
        "point_quantile": POINT_QUANTILE,
    }


def model_metadata(
    name: str, config: ModelConfig | None, version: str | None = None, alias: str | None = None
) -> dict[str, Any]:
    """KServe's v2 model metadata plus ``parameters`` (and each output's ``quantile``) for ``config``."""
    outputs = output_types(config)
    doc: dict[str, Any] = {"name": name, "platform": "", "inputs": input_types(config), "outputs": outputs}
    if config is None or version is None:
        return doc
    quantile_of = dict(zip(config.output_names, config.quantiles, strict=True))
    for output in outputs:
        output["parameters"] = {"quantile": quantile_of[output["name"]]}
    doc["versions"] = [version]
    doc["parameters"] = metadata_parameters(config, version, alias)
    return doc
