"""The facade's settings: the shared core fields plus what only the facade reads."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from btcforecast.database import DatabaseSettings
from btcforecast.mlflow_webhooks import WebhookSettings
from btcforecast.settings import CallbackSecretSettings, CoreSettings

DEFAULT_ALLOWLIST = "127.0.0.1,localhost,::1"


class FacadeSettings(CoreSettings, CallbackSecretSettings, WebhookSettings, DatabaseSettings):
    """Read from the environment (upper-cased field names)."""

    predictor_url: str = Field("http://127.0.0.1:8080", description="predictor base URL")
    predictor_model: str = Field("btc-lstm", description="KServe model name served by the predictor")
    predictor_timeout: float = Field(30.0, gt=0, description="seconds for one predictor call")
    reload_token: SecretStr | None = Field(
        None, description="bearer token for the predictor's reload endpoint"
    )
    api_token: SecretStr | None = Field(None, description="bearer token for /reload; unset = open")

    champion_start: date = Field(date(2025, 3, 27), description="first base date of the stitched backtest")
    reload_mode: Literal["local", "cluster"] = Field("local", description="local: call the predictor")
    modelalias_name: str = Field("btc-lstm-production", description="ModelAlias /reload patches (cluster)")
    modelalias_namespace: str = Field("default", description="namespace of that ModelAlias (cluster)")
    cluster_reload_timeout: float = Field(
        120.0, gt=0, description="seconds /reload waits for the operator to roll an alias out (cluster)"
    )

    callback_allowlist: str = Field(DEFAULT_ALLOWLIST, description="comma-separated hosts, IPs or CIDRs")
    callback_timeout: float = Field(10.0, gt=0, description="seconds for one callback POST")
    callback_retries: int = Field(8, ge=0, description="retries after the first callback attempt")
    callback_backoff: float = Field(1.0, gt=0, description="first retry delay (s); doubles, with jitter")
    callback_backoff_max: float = Field(60.0, gt=0, description="longest delay between callback attempts")

    jobs_db: Path | None = Field(
        None, description="sqlite file of jobs when DATABASE_URL is unset; default STATE_DIR/facade-jobs.db"
    )
    jobs_lease_seconds: float = Field(
        30.0, gt=0, description="seconds a replica owns a claimed job unless it renews (every third of it)"
    )
    jobs_poll_seconds: float = Field(5.0, gt=0, description="how often a replica looks for unowned jobs")
    jobs_max_claimed: int = Field(16, ge=1, description="claimed jobs one replica runs at once")
    max_body_bytes: int = Field(64 * 1024, ge=1, description="largest request body accepted")
    result_cache_size: int = Field(
        128, ge=0, description="prediction results kept per (version, range), and as many backtest reports"
    )
    alias_cache_seconds: float = Field(
        5.0, ge=0, description="longest a resolved alias is served without asking MLflow again (0 = off)"
    )
    webhook_name: str = Field("btcf-facade", description="name of the facade's webhook in MLflow")
    facade_host: str = Field("127.0.0.1", description="address `python -m facade` binds")
    facade_port: int = Field(8000, ge=1, le=65535, description="port `python -m facade` listens on")

    @field_validator("predictor_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def jobs_db_path(self) -> Path:
        return self.jobs_db or self.state_dir / "facade-jobs.db"

    @property
    def allowlist(self) -> list[str]:
        return [h.strip() for h in self.callback_allowlist.split(",") if h.strip()]


@lru_cache
def get_settings() -> FacadeSettings:
    return FacadeSettings()
