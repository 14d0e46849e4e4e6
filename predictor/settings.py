"""The predictor's settings: the shared core fields plus what only the predictor reads."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr

from btcforecast.settings import CoreSettings


class PredictorSettings(CoreSettings):
    """Read from the environment (upper-cased field names), overridden by command-line flags."""

    model_version: str | None = Field(None, description="serve this version instead of following the alias")
    reload_token: SecretStr | None = Field(
        None, description="bearer token for the reload endpoint; unset = open"
    )
    max_windows: int = Field(10_000, ge=1, description="largest N accepted in one request")
    max_body_bytes: int = Field(
        32 * 1024 * 1024,
        ge=1,
        description="largest request body read (413 beyond); MAX_WINDOWS as JSON is about 20 MB",
    )
    version_cache_size: int = Field(16, ge=1, description="model versions kept loaded (LRU)")
    access_log: bool = Field(False, description="log one line per request (uvicorn's access log)")
    torch_threads: int = Field(1, ge=1, description="torch intra-op threads")
    load_retry_initial: float = Field(
        1.0, gt=0, description="first wait (s) before retrying a failed start-up load"
    )
    load_retry_max: float = Field(30.0, gt=0, description="longest wait (s) between start-up load attempts")
    load_retry_attempts: int | None = Field(
        None, ge=1, description="give up after this many attempts; unset = never"
    )


@lru_cache
def get_settings() -> PredictorSettings:
    return PredictorSettings()
