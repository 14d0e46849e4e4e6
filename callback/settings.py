"""The receiver's settings: the shared core fields plus the secret, limits and where results live."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field

from btcforecast.database import DatabaseSettings
from btcforecast.settings import CallbackSecretSettings, CoreSettings


class CallbackSettings(CoreSettings, CallbackSecretSettings, DatabaseSettings):
    """Read from the environment (upper-cased field names)."""

    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1, description="largest accepted result body")
    max_skew_seconds: float = Field(300.0, gt=0, description="oldest (or most future) accepted timestamp")
    callback_db: Path | None = Field(
        None, description="sqlite file of results when DATABASE_URL is unset; default STATE_DIR/callback.db"
    )
    callback_host: str = Field("127.0.0.1", description="address `python -m callback` binds")
    callback_port: int = Field(9001, ge=1, le=65535, description="port `python -m callback` listens on")

    @property
    def db_path(self) -> Path:
        return self.callback_db or self.state_dir / "callback.db"


@lru_cache
def get_settings() -> CallbackSettings:
    return CallbackSettings()
