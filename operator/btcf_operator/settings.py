"""The operator's settings: the shared core fields plus what only the operator reads.

Every timing knob lives here so that tests can run the real operator with short intervals while a
cluster keeps the defaults.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr, model_validator

from btcforecast.mlflow_webhooks import WebhookSettings
from btcforecast.settings import CoreSettings


class OperatorSettings(CoreSettings, WebhookSettings):
    """Read from the environment (upper-cased field names)."""

    rollout_deadline_seconds: int = Field(
        300, ge=1, description="deadline of a rollout when the resource sets no rolloutDeadlineSeconds"
    )
    progress_interval: float = Field(
        2.0, gt=0, description="seconds between checks of a rollout's progress (and of whether a poll is due)"
    )
    min_poll_seconds: float = Field(
        5.0, gt=0, description="floor applied to spec.pollSeconds (the CRD's minimum; lowered only in tests)"
    )
    retry_initial_seconds: float = Field(
        5.0, gt=0, description="first retry delay after MLflow or alias errors"
    )
    retry_max_seconds: float = Field(300.0, gt=0, description="longest retry delay (exponential backoff cap)")
    hotreload_retries: int = Field(3, ge=1, description="attempts per pod before a hot reload is given up")
    hotreload_retry_delay: float = Field(1.0, ge=0, description="seconds between attempts on one pod")
    hotreload_timeout: float = Field(
        60.0, gt=0, description="HTTP timeout of one reload call (loads a model)"
    )
    predictor_port: int = Field(8080, ge=1, le=65535, description="predictor port when a pod declares none")
    predictor_model_name: str = Field("btc-lstm", description="KServe model name in the reload URL")
    reload_token: SecretStr | None = Field(
        None, description="bearer token for predictors' reload endpoint when the resource names no Secret"
    )
    kube_timeout: float = Field(10.0, gt=0, description="timeout of one Kubernetes API call")
    facade_url: str | None = Field(
        None, description="the facade's base URL: the quality gate (spec.gate) asks it for backtests"
    )
    gate_timeout: float = Field(
        120.0, gt=0, description="HTTP timeout of one quality-gate backtest (two versions' inference)"
    )
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="port of the Prometheus /metrics endpoint (unset: not served)"
    )
    metrics_host: str = Field(
        "127.0.0.1", description="address the /metrics endpoint binds (the chart: 0.0.0.0)"
    )
    webhook_host: str = Field("127.0.0.1", description="address the MLflow webhook receiver binds")
    webhook_port: int = Field(8081, ge=1, le=65535, description="port of the MLflow webhook receiver")
    webhook_name: str = Field("btcf-operator", description="name of the operator's webhook in MLflow")

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> OperatorSettings:
        if self.mlflow_webhook_url and not self.mlflow_webhook_secret:
            raise ValueError("MLFLOW_WEBHOOK_URL is set but MLFLOW_WEBHOOK_SECRET is not")
        return self


@lru_cache
def get_settings() -> OperatorSettings:
    return OperatorSettings()
