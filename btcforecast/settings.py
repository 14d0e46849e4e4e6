"""Settings shared by every component.

Each component has exactly one settings object; it subclasses :class:`CoreSettings` to add its own
fields, so the names of the shared environment variables are defined once, here.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

DEFAULT_MODEL_NAME = "btc-lstm"
DEFAULT_ALIAS = "production"
DEFAULT_MARKET_BUCKET = "market-data"
DEFAULT_MARKET_KEY = "btc_usd_1h.parquet"


class CoreSettings(BaseSettings):
    """Where the registry, the object store and the market data are; read from the environment."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", protected_namespaces=())

    mlflow_tracking_uri: str = Field("http://127.0.0.1:5000", description="MLflow tracking server")
    model_name: str = Field(DEFAULT_MODEL_NAME, description="registered model in MLflow")
    model_alias: str = Field(DEFAULT_ALIAS, description="alias served by default")

    state_dir: Path = Field(Path(".state"), description="local state: sqlite, parquet, model cache")

    s3_endpoint_url: str | None = Field(None, description="S3 endpoint; unset means local files")
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_region: str = "us-east-1"

    market_data_uri: str | None = Field(
        None,
        description="s3://bucket/key or a local path of the market data Parquet; "
        "default: s3://market-data/btc_usd_1h.parquet when S3 is configured, else STATE_DIR/market/",
    )
    btc_data_csv: Path | None = Field(None, description="CSV of hourly OHLCV bars to import")

    secrets_dir: Path | None = Field(
        None,
        description="directory of files named like these variables (API_TOKEN, AWS_SECRET_ACCESS_KEY, ...), "
        "e.g. a mounted Secret; a variable set in the environment wins over its file",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Secrets may come as files (SECRETS_DIR), so that a pod never carries them in its environment."""
        directory = os.environ.get("SECRETS_DIR")
        if directory:
            file_secret_settings = SecretsSettingsSource(settings_cls, secrets_dir=directory)
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @property
    def resolved_market_data_uri(self) -> str:
        """The market data location with the embedded default filled in."""
        if self.market_data_uri:
            return self.market_data_uri
        if self.s3_endpoint_url:
            return f"s3://{DEFAULT_MARKET_BUCKET}/{DEFAULT_MARKET_KEY}"
        return str(self.state_dir / "market" / DEFAULT_MARKET_KEY)

    @property
    def model_cache_dir(self) -> Path:
        return self.state_dir / "models"


class CallbackSecretSettings(BaseSettings):
    """The callback signing key, one field for both ends: the facade signs callbacks, the receiver checks."""

    callback_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key of signed callbacks; set on the receiver = signatures required"
    )

    @property
    def secret(self) -> str | None:
        return self.callback_secret.get_secret_value() if self.callback_secret else None


@lru_cache
def get_settings() -> CoreSettings:
    return CoreSettings()
