"""Cluster mode of ``/reload``: move the ModelAlias's ``spec.alias`` and report what the operator rolled out.

The facade never touches the predictor in a cluster; the operator owns rollouts. The waiting and
the reading of the status are the core's (:func:`btcforecast.modelalias.set_alias_and_wait`); this
module turns its outcomes into what the API answers: an alias the registry does not know is a
``NotFound`` (404 naming it), any other failed rollout stays ``ReloadFailed`` (502 with the
operator's reason), no answer in time is ``ReloadTimeout`` (504), a missing ModelAlias or an
unreachable or refusing API server is ``Unavailable`` (503), and a reload to another
alias while one is under way is ``ReloadInProgress`` (409) at once: here without asking the API
server when this process started it, else from the resource's status (another replica's change).
Two reloads to the same alias wait for the same rollout.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from btcforecast.errors import Unavailable
from btcforecast.kube import KubeError, api_client
from btcforecast.modelalias import (
    ALIAS_NOT_FOUND,
    ModelAliasApi,
    ReloadFailed,
    ReloadInProgress,
    set_alias_and_wait,
)
from btcforecast.registry import AliasNotFoundError
from facade.reload import ReloadResult
from facade.settings import FacadeSettings

KUBE_CALL_TIMEOUT = 10.0
POLL_INTERVAL = 0.5


class ClusterReloader:
    """Moves the ModelAlias named by MODELALIAS_NAME/MODELALIAS_NAMESPACE; waits CLUSTER_RELOAD_TIMEOUT."""

    def __init__(self, settings: FacadeSettings, api: ModelAliasApi | None = None) -> None:
        self.namespace = settings.modelalias_namespace
        self.name = settings.modelalias_name
        self.timeout = settings.cluster_reload_timeout
        self._api = api
        self._lock = asyncio.Lock()
        self._running: Counter[str] = Counter()  # alias -> reloads of it waiting in this process

    async def _client(self) -> ModelAliasApi:
        # Built on first use so that the facade starts (and /health answers) without credentials.
        async with self._lock:
            if self._api is None:
                self._api = ModelAliasApi(await asyncio.to_thread(api_client), timeout=KUBE_CALL_TIMEOUT)
            return self._api

    async def reload(self, alias: str) -> ReloadResult:
        other = next((a for a, n in self._running.items() if n and a != alias), None)
        if other is not None:
            raise ReloadInProgress(
                f"a reload to {other!r} is in progress; try {alias!r} again once it is done"
            )
        self._running[alias] += 1
        try:
            return await self._reload(alias)
        finally:
            self._running[alias] -= 1
            if not self._running[alias]:
                del self._running[alias]

    async def _reload(self, alias: str) -> ReloadResult:
        api = await self._client()
        where = f"ModelAlias {self.namespace}/{self.name}"
        try:
            answer = await set_alias_and_wait(
                api, self.namespace, self.name, alias, timeout=self.timeout, interval=POLL_INTERVAL
            )
        except ReloadFailed as e:
            if e.reason == ALIAS_NOT_FOUND:
                unknown = f"alias {alias!r} not found in the model registry ({e.message})"
                raise AliasNotFoundError(unknown) from e
            raise
        except KubeError as e:
            raise Unavailable(f"the Kubernetes API refused to move {where}: {e}") from e
        return ReloadResult(model_alias=answer["model_alias"], model_version=answer["model_version"])

    async def aclose(self) -> None:
        if self._api is not None:
            self._api.close()
