"""The facade's one way to talk to the predictor: v2 infer, version-pinned infer, reload, metadata.

Backtests send thousands of windows at once ([N, 12, 7] float32 is about 1 MB for N = 3,000); as
JSON that is 10x larger and slow to encode on both sides, so windows travel with the open inference
protocol's binary tensor data extension: a JSON header, then the raw little-endian bytes, with the
header's length in ``Inference-Header-Content-Length``. Outputs are asked for in binary too, and a
JSON answer is understood as well.

A version answers one output per quantile it predicts (``btcforecast.model.output_name``): ``close``
(the median, the point forecast) and, for a quantile model, ``close_p10`` and ``close_p90``; a
format-1 version answers ``close`` alone. :func:`decode_infer_response` maps the names back to their
quantiles and returns :class:`QuantilePredictions` (``values`` [N, Q], columns in increasing quantile
order, ``quantiles`` naming them), so callers never depend on the order of the outputs on the wire.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from btcforecast.errors import NotFound, ProjectError, Unavailable
from btcforecast.evaluation import POINT_QUANTILE

HEADER_LENGTH = "Inference-Header-Content-Length"
INPUT_NAME = "windows"
OUTPUT_NAME = "close"


class PredictorUnavailable(Unavailable):
    """The predictor cannot be reached, is not ready, or failed."""

    @property
    def timed_out(self) -> bool:
        """The predictor did not answer in time (asking again would wait as long again)."""
        return isinstance(self.__cause__, httpx.TimeoutException)


class PredictorNotFound(NotFound):
    """The predictor does not know the model, version or alias asked for (404)."""


class PredictorRejected(ProjectError):
    """The predictor refused the request as invalid (4xx); the message is the predictor's."""


@dataclass(frozen=True)
class ReloadAnswer:
    model_alias: str | None
    model_version: str
    raw: dict[str, Any]


def encode_infer_request(windows: np.ndarray, alias: str | None = None) -> tuple[bytes, int]:
    """(body, json header length) of a binary v2 request carrying ``windows`` as FP32; ``alias``
    asks the predictor to resolve that alias itself (``parameters.model_alias``)."""
    data = np.ascontiguousarray(windows, dtype="<f4")
    parameters: dict[str, Any] = {"binary_data_output": True}
    if alias is not None:
        parameters["model_alias"] = alias
    header = {
        "inputs": [
            {
                "name": INPUT_NAME,
                "shape": list(data.shape),
                "datatype": "FP32",
                "parameters": {"binary_data_size": data.nbytes},
            }
        ],
        "parameters": parameters,
    }
    head = json.dumps(header, separators=(",", ":")).encode()
    return head + data.tobytes(), len(head)


_QUANTILE_OUTPUT = re.compile(r"^close_p(\d{2})$")


def quantile_of(name: str) -> float | None:
    """The quantile an output name carries (``close`` -> 0.5, ``close_p10`` -> 0.1), None if none.

    The inverse of ``btcforecast.model.output_name`` (a test holds them together), written out here
    because that module imports torch and the facade never does.
    """
    if name == OUTPUT_NAME:
        return POINT_QUANTILE
    match = _QUANTILE_OUTPUT.match(name)
    if match is None:
        return None
    quantile = int(match.group(1)) / 100
    return quantile if 0.0 < quantile < 1.0 and quantile != POINT_QUANTILE else None


@dataclass(frozen=True)
class QuantilePredictions:
    """Predicted close quantiles: ``values`` float32 [N, Q], column ``j`` is quantile ``quantiles[j]``.

    Columns are in increasing quantile order and always include the median (0.5), the point forecast.
    A point-only (format-1) version has ``quantiles == (0.5,)`` and so no interval.
    """

    values: np.ndarray
    quantiles: tuple[float, ...]

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def point(self) -> np.ndarray:
        """The point forecast [N]: the median column."""
        return self.values[:, self.quantiles.index(POINT_QUANTILE)]

    @property
    def has_interval(self) -> bool:
        return len(self.quantiles) > 1

    @property
    def lower(self) -> np.ndarray | None:
        """The lowest quantile [N] (10% for the 80% interval), None for a point-only version."""
        return self.values[:, 0] if self.has_interval else None

    @property
    def upper(self) -> np.ndarray | None:
        """The highest quantile [N] (90% for the 80% interval), None for a point-only version."""
        return self.values[:, -1] if self.has_interval else None


def decode_infer_response(body: bytes, header_length: int | None) -> QuantilePredictions:
    """The close quantile outputs of a v2 response, binary or JSON, as [N, Q] float32.

    Outputs whose names carry no quantile are skipped (their binary bytes too); ``close`` is required.
    """
    return _decode(body, header_length)[0]


def _decode(body: bytes, header_length: int | None) -> tuple[QuantilePredictions, str | None]:
    """(the predictions, the ``model_version`` that answered) of a v2 response."""
    head = body if header_length is None else body[:header_length]
    try:
        meta = json.loads(head)
        outputs = [(str(o["name"]), o) for o in meta["outputs"]]
    except (ValueError, KeyError, TypeError) as e:
        raise PredictorUnavailable(f"predictor answered an unreadable infer response: {e}") from e
    version = meta.get("model_version")
    offset = header_length or 0
    columns: dict[float, np.ndarray] = {}
    try:
        for name, output in outputs:
            size = (output.get("parameters") or {}).get("binary_data_size")
            quantile = quantile_of(name)
            if size is None:
                if quantile is not None:
                    columns[quantile] = np.asarray(output["data"], dtype=np.float32).reshape(-1)
                continue
            if quantile is not None:
                count = int(size) // 4
                columns[quantile] = np.frombuffer(body, dtype="<f4", count=count, offset=offset).astype(
                    np.float32
                )
            offset += int(size)
    except (ValueError, KeyError, TypeError) as e:
        raise PredictorUnavailable(f"predictor answered an unreadable infer output: {e}") from e
    if POINT_QUANTILE not in columns:
        raise PredictorUnavailable(f"predictor response has no {OUTPUT_NAME!r} output")
    lengths = {len(c) for c in columns.values()}
    if len(lengths) != 1:
        raise PredictorUnavailable(f"predictor outputs have different lengths: {sorted(lengths)}")
    quantiles = tuple(sorted(columns))
    predictions = QuantilePredictions(np.stack([columns[q] for q in quantiles], axis=1), quantiles)
    return predictions, None if version is None else str(version)


class PredictorClient:
    """Calls the predictor over one injected ``httpx.AsyncClient``; errors become our exceptions."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        model: str = "btc-lstm",
        *,
        reload_token: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._client = client
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._reload_token = reload_token
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 3.0))

    def _url(self, path: str) -> str:
        return f"{self.base_url}/v2/models/{self.model}{path}"

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, url, timeout=self._timeout, **kwargs)
        except httpx.HTTPError as e:
            raise PredictorUnavailable(
                f"predictor at {self.base_url} is unreachable: {type(e).__name__}"
            ) from e
        if response.status_code == 404:
            raise PredictorNotFound(_message(response))
        if response.status_code in (401, 403):
            raise PredictorUnavailable(f"predictor refused the facade's credentials: {_message(response)}")
        if 400 <= response.status_code < 500:
            raise PredictorRejected(_message(response))
        if response.status_code >= 500:
            raise PredictorUnavailable(f"predictor failed ({response.status_code}): {_message(response)}")
        return response

    async def infer(self, windows: np.ndarray, version: str | None = None) -> QuantilePredictions:
        """Close quantiles for raw windows [N, T, F]: ``.values`` [N, Q] in ``.quantiles`` order.

        ``version`` asks for that version from the predictor's cache, leaving the live model alone.
        """
        path = f"/versions/{version}/infer" if version is not None else "/infer"
        return (await self._infer(windows, path))[0]

    async def infer_alias(self, windows: np.ndarray, alias: str) -> tuple[QuantilePredictions, str]:
        """(close quantiles, the version that answered) for ``alias``, resolved by the predictor.

        One MLflow round trip (the predictor's) where resolving here and then asking for the version
        costs two; the answer names its version, so it is cached like a version-pinned one.
        """
        predictions, version = await self._infer(windows, "/infer", alias=alias)
        if version is None:
            raise PredictorUnavailable("predictor's infer answer names no model_version")
        return predictions, version

    async def _infer(
        self, windows: np.ndarray, path: str, alias: str | None = None
    ) -> tuple[QuantilePredictions, str | None]:
        body, header_length = encode_infer_request(windows, alias)
        response = await self._send(
            "POST",
            self._url(path),
            content=body,
            headers={HEADER_LENGTH: str(header_length), "Content-Type": "application/octet-stream"},
        )
        length = response.headers.get(HEADER_LENGTH)
        predictions, version = _decode(response.content, int(length) if length else None)
        if len(predictions) != windows.shape[0]:
            raise PredictorUnavailable(
                f"predictor returned {len(predictions)} values for {windows.shape[0]} windows"
            )
        return predictions, version

    async def reload(self, *, alias: str | None = None, version: str | None = None) -> ReloadAnswer:
        params = {k: v for k, v in (("alias", alias), ("version", version)) if v is not None}
        headers = {"Authorization": f"Bearer {self._reload_token}"} if self._reload_token else {}
        response = await self._send("POST", self._url("/reload"), params=params, headers=headers)
        raw = _json(response)
        version_out = raw.get("model_version") or raw.get("version")
        if version_out is None:
            raise PredictorUnavailable("predictor's reload answer names no version")
        return ReloadAnswer(
            model_alias=raw.get("model_alias") or raw.get("alias"), model_version=str(version_out), raw=raw
        )

    async def metadata(self) -> dict[str, Any]:
        """The predictor's v2 model metadata (and whatever it adds about the live version)."""
        return _json(await self._send("GET", self._url("")))

    async def serving(self) -> dict[str, Any]:
        """What the predictor serves live: ``model_alias``, ``model_version``, ``ready``, ``synthetic``."""
        return _json(await self._send("GET", self._url("/serving")))

    async def ready(self) -> bool:
        try:
            await self._send("GET", self._url("/ready"))
        except (PredictorUnavailable, PredictorNotFound, PredictorRejected):
            return False
        return True


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError as e:
        raise PredictorUnavailable("predictor answered something that is not JSON") from e
    if not isinstance(value, dict):
        raise PredictorUnavailable("predictor answered JSON that is not an object")
    return value


def _message(response: httpx.Response) -> str:
    try:
        value = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(value, dict):
        return str(value.get("error") or value.get("detail") or value)[:300]
    return str(value)[:300]
