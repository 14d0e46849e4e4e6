"""Domain results to response models (shared by the routes and the callback jobs)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pandas as pd
from fastapi import Response

from btcforecast.evaluation import BacktestReport
from facade.forecasts import Forecast
from facade.jobs import Job
from facade.schemas import (
    JobResponse,
)

ISO_HOUR = "%Y-%m-%dT%H:%M:%S"


def _clean(value: Any) -> Any:
    """NaN and infinities as None, recursively: the same null over HTTP (orjson) and in callbacks (json)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def report_payload(report: BacktestReport) -> dict[str, Any]:
    """A backtest report as the metrics block: model, persistence, significance, interval, naive band."""
    return _clean(report.model_dump())


def _rounded(values: np.ndarray | None, n: int) -> list[float | None]:
    if values is None:
        return [None] * n
    return np.round(values.astype(np.float64), 2).tolist()


def forecast_payload(forecast: Forecast, *, stitched: bool) -> dict[str, Any]:
    """The PredictResponse contract as plain JSON-ready data.

    Built directly rather than through 3,000 pydantic objects: this is the hot path of /predict,
    and the response model still documents it (a test checks the payload against it).
    """
    predictions: list[dict[str, Any]] = []
    for part in forecast.parts:
        n = len(part.hours)
        times = part.hours.strftime(ISO_HOUR)
        values = _rounded(part.predictions, n)
        lower = _rounded(part.lower, n)
        upper = _rounded(part.upper, n)
        alias, version = part.alias, part.version
        predictions.extend(
            {
                "datetime": t,
                "prediction": v,
                "lower": lo,
                "upper": hi,
                "model_alias": alias,
                "model_version": version,
            }
            for t, v, lo, hi in zip(times, values, lower, upper, strict=True)
        )
    per_alias = [
        {
            "model_alias": p.alias,
            "model_version": p.version,
            "start": p.hours[0].strftime(ISO_HOUR),
            "end": p.hours[-1].strftime(ISO_HOUR),
            **report_payload(p.metrics),
        }
        for p in forecast.parts
    ]
    single = None if stitched else forecast.parts[0]
    return {
        "start_date": forecast.start.strftime("%Y-%m-%d %H:%M:%S"),
        "end_date": forecast.end.strftime("%Y-%m-%d %H:%M:%S"),
        "model_alias": single.alias if single else None,
        "model_version": single.version if single else None,
        "n": forecast.n,
        "data_source": forecast.data_source,
        "synthetic": forecast.synthetic,
        "predictions": predictions,
        "metrics": {"overall": report_payload(forecast.overall), "per_alias": per_alias},
    }


def forecast_response(forecast: Forecast, *, stitched: bool) -> Response:
    """The forecast as a JSON response (NaN metrics, e.g. direction over flat hours, are null)."""
    content = orjson.dumps(forecast_payload(forecast, stitched=stitched), option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(content=content, media_type="application/json")


def iso_hours(index: pd.DatetimeIndex) -> list[str]:
    return list(index.strftime(ISO_HOUR))


def _when(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def job_response(job: Job) -> JobResponse:
    outcome = job.result.get("status") if job.result else None
    return JobResponse(
        job_id=job.job_id,
        kind=job.kind,
        status=job.status,
        callback_url=job.callback_url,
        attempts=job.attempts,
        last_error=job.last_error,
        created_at=_when(job.created_at) or "",
        updated_at=_when(job.updated_at) or "",
        delivered_at=_when(job.delivered_at),
        outcome=outcome,
    )
