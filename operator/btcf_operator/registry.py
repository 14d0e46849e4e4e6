"""Resolve an MLflow alias to a version for the operator, off the event loop.

A thin async face over :mod:`btcforecast.registry` (the one MLflow client of the project), keeping
one ``MlflowClient`` per tracking URI. Its errors are the core's: ``AliasNotFoundError`` when the
alias (or the model) does not exist, ``RegistryUnavailable`` when MLflow cannot be reached.
"""

from __future__ import annotations

import asyncio

from mlflow.tracking import MlflowClient

from btcforecast import registry
from btcforecast.registry import AliasNotFoundError, RegistryUnavailable, VersionNotFoundError

__all__ = ["AliasNotFoundError", "AliasResolver", "RegistryUnavailable"]


class AliasResolver:
    """alias -> version against one MLflow server."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self._client: MlflowClient | None = None

    def _resolve(self, model: str, alias: str) -> str:
        if self._client is None:
            self._client = registry.connect(self.tracking_uri)
        try:
            return registry.resolve(self._client, model, alias=alias).version
        except VersionNotFoundError as e:  # the registered model itself is missing
            raise AliasNotFoundError(str(e)) from e

    async def resolve(self, model: str, alias: str) -> str:
        """The version ``alias`` points at now."""
        return await asyncio.to_thread(self._resolve, model, alias)
