"""The public API's request and response models: the contract in DESIGN.md, plus added fields."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from btcforecast.alias_names import ALIAS_PATTERN
from btcforecast.metrics import DieboldMariano, ForecastMetrics, IntervalMetrics
from facade.ssrf import MAX_URL_LENGTH
from facade.time_range import TIME_PATTERN

CALLBACK_URL_PATTERN = r"^https?://[^\s/?#@]+(?:[/?#][^\s]*)?$"
"""An http(s) URL without credentials; the SSRF rules (facade.ssrf) then decide whether it may be called."""

AliasField = Field(None, pattern=ALIAS_PATTERN, description="backtest_20250327, 20250327 or a named alias")
CallbackField = Field(
    None,
    pattern=CALLBACK_URL_PATTERN,
    max_length=MAX_URL_LENGTH,
    description="answer 202 and POST the result here (403 when the SSRF rules refuse it)",
)


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    model_loaded: bool
    model_alias: str | None = None
    model_version: str | None = None
    predictor: Literal["ok", "unavailable", "not ready"] = "ok"
    mlflow: Literal["ok", "unavailable"] = "ok"
    market_data: Literal["ok", "unavailable", "missing"] = "ok"
    data_source: str | None = Field(
        None, description="provenance of the market data: csv:..., synthetic, ..."
    )
    synthetic: bool = Field(False, description="true when the market data or the live model is synthetic")
    data_synthetic: bool | None = None
    model_synthetic: bool | None = None
    data_start: str | None = None
    data_end: str | None = None
    problems: list[str] = Field(default_factory=list, description="why the status is degraded")


class ReloadResponse(BaseModel):
    status: Literal["reloaded"] = "reloaded"
    model_alias: str | None
    model_version: str


class Prediction(BaseModel):
    datetime: str = Field(description="the hour being predicted, UTC, ISO 8601 without offset")
    prediction: float = Field(
        description="predicted close of that hour, USD: the point forecast, the median (50% quantile)"
    )
    lower: float | None = Field(
        description="lower bound of the 80% interval (the 10% quantile), USD; null for a point-only version"
    )
    upper: float | None = Field(
        description="upper bound of the 80% interval (the 90% quantile), USD; null for a point-only version"
    )
    model_alias: str | None = None
    model_version: str | None = None


class ReportModel(BaseModel):
    """A backtest report (``btcforecast.evaluation.BacktestReport``) over the predicted hours."""

    model: ForecastMetrics = Field(description="the model's point forecast (the median)")
    persistence: ForecastMetrics = Field(description="the naive forecast: next close = last close")
    significance: DieboldMariano | None = Field(
        description="Diebold-Mariano test (absolute errors, Newey-West variance, Harvey-Leybourne-Newbold "
        "correction) of the point forecast against persistence; statistic < 0 and better = 'model' "
        "mean the model's errors are significantly smaller at 5%; null for fewer than 3 hours"
    )
    interval: IntervalMetrics | None = Field(
        description="the model's 80% interval (10% to 90% quantile): coverage overall and per ex-ante "
        "volatility tercile, mean width and pinball loss over its quantiles; null for a point-only version"
    )
    naive_band: IntervalMetrics | None = Field(
        description="the same figures for the naive band: the last close times the empirical quantiles "
        "of the previous 30 days' hourly returns; null for a point-only version or when the data holds "
        "fewer than 30 days before the first hour"
    )
    pinball_ratio: float | None = Field(
        description="the model's pinball loss divided by the naive band's (below 1: the model's "
        "quantiles are better); null whenever naive_band is null"
    )


class AliasMetrics(ReportModel):
    model_alias: str
    model_version: str
    start: str
    end: str


class BacktestMetrics(BaseModel):
    overall: ReportModel = Field(
        description="over every predicted hour (stitched: all parts end to end; interval figures only "
        "when every part predicts the same quantiles)"
    )
    per_alias: list[AliasMetrics]


class PredictResponse(BaseModel):
    start_date: str = Field(description="first hour predicted, 'YYYY-MM-DD HH:MM:SS' UTC")
    end_date: str
    model_alias: str | None = Field(None, description="the alias asked for (None for the stitched backtest)")
    model_version: str | None = None
    n: int
    data_source: str
    synthetic: bool
    predictions: list[Prediction]
    metrics: BacktestMetrics


class PredictRequest(BaseModel):
    """JSON body alternative to the query parameters; body fields win over query ones."""

    alias: str | None = AliasField
    start: str | None = Field(None, pattern=TIME_PATTERN, description="first hour to predict")
    end: str | None = Field(None, pattern=TIME_PATTERN, description="last hour to predict")
    callback_url: str | None = CallbackField


class ChampionRequest(BaseModel):
    callback_url: str | None = CallbackField


class AliasesResponse(BaseModel):
    aliases: list[str]
    versions: dict[str, str] = Field(default_factory=dict, description="alias -> model version")


class BtcInfoResponse(BaseModel):
    datetime: list[str]
    btc_open: list[float]
    btc_high: list[float]
    btc_low: list[float]
    btc_close: list[float]
    btc_volume: list[float]
    data_source: str | None = None
    synthetic: bool = False


class JobAccepted(BaseModel):
    job_id: str
    status: Literal["pending", "delivered", "failed"]
    status_url: str
    callback_url: str


class JobResponse(BaseModel):
    job_id: str
    kind: str
    status: Literal["pending", "delivered", "failed"]
    callback_url: str
    attempts: int
    last_error: str | None
    created_at: str
    updated_at: str
    delivered_at: str | None
    outcome: Literal["succeeded", "failed"] | None = Field(None, description="of the computation, once known")
