"""Domain results to response models (shared by the routes and the callback jobs)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from facade.backtest import MetricPair
from facade.forecasts import Forecast
from facade.jobs import Job
from facade.schemas import (
    AliasMetrics,
    BacktestMetrics,
    JobResponse,
    MetricPairModel,
    Prediction,
    PredictResponse,
)

ISO_HOUR = "%Y-%m-%dT%H:%M:%S"


def _pair(pair: MetricPair) -> MetricPairModel:
    return MetricPairModel(model=pair.model, persistence=pair.persistence)


def forecast_response(forecast: Forecast, *, stitched: bool) -> PredictResponse:
    predictions: list[Prediction] = []
    for part in forecast.parts:
        times = part.hours.strftime(ISO_HOUR)
        values = np.round(part.predictions.astype(np.float64), 2).tolist()
        predictions.extend(
            Prediction.model_construct(
                datetime=t, prediction=v, model_alias=part.alias, model_version=part.version
            )
            for t, v in zip(times, values, strict=True)
        )
    per_alias = [
        AliasMetrics(
            model_alias=p.alias,
            model_version=p.version,
            start=p.hours[0].strftime(ISO_HOUR),
            end=p.hours[-1].strftime(ISO_HOUR),
            model=p.metrics.model,
            persistence=p.metrics.persistence,
        )
        for p in forecast.parts
    ]
    single = None if stitched else forecast.parts[0]
    return PredictResponse(
        start_date=forecast.start.strftime("%Y-%m-%d %H:%M:%S"),
        end_date=forecast.end.strftime("%Y-%m-%d %H:%M:%S"),
        model_alias=single.alias if single else None,
        model_version=single.version if single else None,
        n=forecast.n,
        data_source=forecast.data_source,
        synthetic=forecast.synthetic,
        predictions=predictions,
        metrics=BacktestMetrics(overall=_pair(forecast.overall), per_alias=per_alias),
    )


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
