"""Making a version live: the seam between local mode and cluster mode.

Locally the facade asks the predictor to reload; in a cluster it updates the ``ModelAlias``
resource and waits for the operator to report the version rolled out. Both answer the same
question — "alias in, which version is now live?" — so the route does not care which runs; the
app assembly (:func:`facade.main.create_app`) picks one from ``RELOAD_MODE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from facade.predictor_client import PredictorClient


@dataclass(frozen=True)
class ReloadResult:
    model_alias: str | None
    model_version: str


class Reloader(Protocol):
    async def reload(self, alias: str) -> ReloadResult:
        """Make ``alias`` (already normalised) live.

        Raises NotFound when the alias is unknown, Unavailable when something is down.
        """
        ...

    async def aclose(self) -> None:
        """Release what the reloader holds (called once, at shutdown)."""
        ...


class LocalReloader:
    """Calls the predictor's reload endpoint (bearer RELOAD_TOKEN) and reports what it serves."""

    def __init__(self, predictor: PredictorClient) -> None:
        self.predictor = predictor

    async def reload(self, alias: str) -> ReloadResult:
        answer = await self.predictor.reload(alias=alias)
        return ReloadResult(model_alias=answer.model_alias or alias, model_version=answer.model_version)

    async def aclose(self) -> None:
        """Nothing to release: the predictor client's HTTP client belongs to the app."""
