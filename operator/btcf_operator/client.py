"""Cluster mode of the facade's ``/reload``: point a ModelAlias at an alias, wait for the operator.

The facade does not touch the predictor in a cluster: it patches ``spec.alias`` of the ModelAlias
named in its settings and waits, bounded, until the operator reports that generation ``Ready``
(then answers with the version rolled out) or ``Failed`` (then says why).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from btcf_operator.kube import KubeApi, NotFound
from btcforecast.errors import DependencyUnavailable


class ReloadTimeout(DependencyUnavailable):
    """The operator did not report the new generation in time (answer 504)."""


class ReloadFailed(Exception):
    """The operator reports the rollout failed (answer 502); ``reason`` is the condition's reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ModelAliasMissing(DependencyUnavailable):
    """The ModelAlias named in the settings does not exist (answer 503: a deployment problem)."""


def _failure_reason(status: dict[str, Any]) -> str:
    for kind in ("Resolved", "RolledOut", "Ready"):
        for condition in status.get("conditions") or []:
            if condition.get("type") == kind and condition.get("status") == "False":
                return str(condition.get("reason") or "Failed")
    return "Failed"


async def set_alias_and_wait(
    kube: KubeApi,
    namespace: str,
    name: str,
    alias: str,
    *,
    timeout: float = 120.0,
    interval: float = 1.0,
) -> dict[str, str]:
    """Patch ``spec.alias`` and wait until the operator rolled it out.

    Returns the seed's shape ``{"status": "reloaded", "model_alias", "model_version"}``.
    """
    try:
        patched = await kube.patch_modelalias_spec(namespace, name, {"alias": alias})
    except NotFound as e:
        raise ModelAliasMissing(f"ModelAlias {namespace}/{name} not found") from e
    generation = int(patched["metadata"].get("generation") or 0)
    deadline = time.monotonic() + timeout
    while True:
        current = await kube.get_modelalias(namespace, name)
        status = current.get("status") or {}
        if (
            int(status.get("observedGeneration") or -1) >= generation
            and (current.get("spec") or {}).get("alias") == alias
        ):
            phase = status.get("phase")
            if phase == "Ready" and status.get("resolvedVersion"):
                return {
                    "status": "reloaded",
                    "model_alias": alias,
                    "model_version": str(status["resolvedVersion"]),
                }
            if phase == "Failed":
                raise ReloadFailed(_failure_reason(status), str(status.get("message") or "rollout failed"))
        if time.monotonic() >= deadline:
            raise ReloadTimeout(
                f"ModelAlias {namespace}/{name} not rolled out to {alias!r} within {timeout:.0f} s "
                f"(phase {status.get('phase')!r}: {status.get('message', '')})"
            )
        await asyncio.sleep(interval)
