"""The ModelAlias resource from Python: its API coordinates, get/patch, and "set the alias and wait".

The operator writes a ModelAlias's status and reads its optional quality gate (``spec.gate``,
:func:`parse_gate`); the facade's cluster-mode ``/reload`` moves its
``spec.alias`` and waits, bounded, until the operator reports that generation ``Ready`` (then
answers with the version rolled out) or ``Failed`` (then says why). A change to another alias that
the operator is still working on is not overtaken: the caller is told at once
(:class:`ReloadInProgress`) instead of both waiting and one of them timing out. Both sides use this
module, so the resource's address and the meaning of its status are written down once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from btcforecast.errors import InputError, ProjectError, Unavailable
from btcforecast.kube import (
    JSON_PATCH,
    MERGE_PATCH,
    Conflict,
    KubeClient,
    KubeError,
    KubeUnavailable,
    NotFound,
)

GROUP = "serving.btcforecast.io"
VERSION = "v1alpha1"
PLURAL = "modelaliases"
ALIAS_NOT_FOUND = "AliasNotFound"
"""The operator's condition reason when the registry has no such alias."""
BLOCKED = "Blocked"
"""The phase of a ModelAlias whose newly resolved version the quality gate holds back."""


@dataclass(frozen=True)
class Gate:
    """``spec.gate``: roll a new version out only if it scores within these ratios of the served one.

    The newcomer and the version being served are backtested on the most recent ``hours`` hours
    after both versions' base dates (hours neither was trained on); the rollout goes ahead only if
    newcomer pinball <= ``max_loss_ratio`` x served pinball and newcomer MAE <= ``max_mae_ratio`` x
    served MAE. Fewer than ``min_hours`` such hours: no verdict (``GateNoData``), nothing rolled out.
    The defaults are the CRD's.
    """

    hours: int = 168
    max_loss_ratio: float = 1.02
    max_mae_ratio: float = 1.02
    min_hours: int = 24


class GateSpecError(InputError):
    """``spec.gate`` holds values the CRD schema would have refused."""


def parse_gate(spec: Mapping[str, Any]) -> Gate | None:
    """The spec's quality gate with defaults filled in, or None when the resource sets none."""
    raw = spec.get("gate")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise GateSpecError(f"spec.gate must be an object, not {type(raw).__name__}")
    default = Gate()
    try:
        gate = Gate(
            hours=int(raw.get("hours", default.hours)),
            max_loss_ratio=float(raw.get("maxLossRatio", default.max_loss_ratio)),
            max_mae_ratio=float(raw.get("maxMaeRatio", default.max_mae_ratio)),
            min_hours=int(raw.get("minHours", default.min_hours)),
        )
    except (TypeError, ValueError) as e:
        raise GateSpecError(f"spec.gate is invalid: {e}") from e
    if gate.hours < 1 or gate.min_hours < 1 or gate.min_hours > gate.hours:
        raise GateSpecError("spec.gate needs 1 <= minHours <= hours")
    if not (gate.max_loss_ratio > 0 and gate.max_mae_ratio > 0):
        raise GateSpecError("spec.gate.maxLossRatio and maxMaeRatio must be positive")
    return gate


class ModelAliasApi(KubeClient):
    """Get and merge-patch ModelAlias objects (spec or status subresource)."""

    @staticmethod
    def modelalias_path(namespace: str, name: str) -> str:
        return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}"

    async def get_modelalias(self, namespace: str, name: str) -> dict[str, Any]:
        return await self.request("GET", self.modelalias_path(namespace, name))

    async def patch_modelalias_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch the status subresource (``None`` values remove fields)."""
        path = self.modelalias_path(namespace, name) + "/status"
        return await self.request("PATCH", path, body={"status": dict(status)}, content_type=MERGE_PATCH)

    async def patch_modelalias_spec(
        self, namespace: str, name: str, spec: Mapping[str, Any], *, resource_version: str | None = None
    ) -> dict[str, Any]:
        """Merge-patch the spec; with ``resource_version``, only if the object is still at that version
        (else :class:`Conflict` with status 409)."""
        body: dict[str, Any] = {"spec": dict(spec)}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        path = self.modelalias_path(namespace, name)
        return await self.request("PATCH", path, body=body, content_type=MERGE_PATCH)

    async def replace_alias_if(self, namespace: str, name: str, expected: str, alias: str) -> dict[str, Any]:
        """Set ``spec.alias`` only while it is still ``expected`` (else :class:`Conflict`)."""
        ops = [
            {"op": "test", "path": "/spec/alias", "value": expected},
            {"op": "replace", "path": "/spec/alias", "value": alias},
        ]
        path = self.modelalias_path(namespace, name)
        return await self.request("PATCH", path, body=ops, content_type=JSON_PATCH)


class ReloadTimeout(Unavailable):
    """The operator did not report the new generation in time."""


class ReloadFailed(ProjectError):
    """The operator reports the rollout failed; ``reason`` is the failing condition's reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class ModelAliasMissing(Unavailable):
    """The ModelAlias to move does not exist (a deployment problem, not the caller's)."""


class ReloadInProgress(ProjectError):
    """Another alias is being rolled out on this ModelAlias; try again once it is done."""


BUSY_PHASES = ("Resolving", "RollingOut")
PATCH_ATTEMPTS = 3


def change_in_progress(modelalias: Mapping[str, Any], alias: str) -> str | None:
    """Why moving the resource to ``alias`` now would overtake a change under way, or None.

    Busy: the spec names another alias and the operator is resolving or rolling it out, or has not
    yet looked at the latest spec (a status for an older generation). A resource the operator never
    wrote a status for is not busy: nothing is under way that a change could overtake.
    """
    spec = modelalias.get("spec") or {}
    status = modelalias.get("status") or {}
    current = spec.get("alias")
    if current == alias:
        return None
    generation = int((modelalias.get("metadata") or {}).get("generation") or 0)
    observed = status.get("observedGeneration")
    if observed is not None and int(observed) < generation:
        return f"the operator has not yet acted on the change to alias {current!r}"
    if status.get("phase") in BUSY_PHASES:
        return f"alias {current!r} is being rolled out ({status.get('phase')}: {status.get('message', '')})"
    return None


def failure_reason(status: Mapping[str, Any]) -> str:
    """The reason of the first failing condition, in the order the operator works through them.

    A ``Blocked`` resource (the quality gate held the version back) answers the ``RolledOut``
    reason: ``QualityGate``, ``GateNoData`` or ``GateUnavailable``.
    """
    if status.get("phase") == BLOCKED:
        for condition in status.get("conditions") or []:
            if condition.get("type") == "RolledOut":
                return str(condition.get("reason") or BLOCKED)
        return BLOCKED
    for kind in ("Resolved", "RolledOut", "Ready"):
        for condition in status.get("conditions") or []:
            if condition.get("type") == kind and condition.get("status") == "False":
                return str(condition.get("reason") or "Failed")
    return "Failed"


async def set_alias_and_wait(
    api: ModelAliasApi,
    namespace: str,
    name: str,
    alias: str,
    *,
    timeout: float = 120.0,
    interval: float = 1.0,
) -> dict[str, str]:
    """Patch ``spec.alias`` and wait until the operator rolled it out.

    Returns the seed's shape ``{"status": "reloaded", "model_alias", "model_version"}``. Raises
    :class:`ReloadFailed` (also when the quality gate holds the version back), :class:`ReloadTimeout`,
    :class:`ModelAliasMissing`, or the client's errors (:class:`btcforecast.kube.KubeError`,
    :class:`btcforecast.kube.KubeUnavailable`).
    An alias the registry does not know is put back to the one followed before (unless someone
    moved it meanwhile), so a mistyped alias does not leave the resource failing and retrying.
    A change to another alias still under way (:func:`change_in_progress`) raises
    :class:`ReloadInProgress` at once, before anything is patched.
    """
    previous, patched = await _move_alias(api, namespace, name, alias)
    generation = int(patched["metadata"].get("generation") or 0)
    deadline = time.monotonic() + timeout
    while True:
        try:
            current = await api.get_modelalias(namespace, name)
        except NotFound as e:
            raise ModelAliasMissing(f"ModelAlias {namespace}/{name} was deleted") from e
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
            if phase == BLOCKED:  # the served version stays; the facade says why, with the figures
                raise ReloadFailed(failure_reason(status), str(status.get("message") or "blocked"))
            if phase == "Failed":
                reason = failure_reason(status)
                if reason == ALIAS_NOT_FOUND and previous and previous != alias:
                    # Moved again meanwhile (Conflict) or refused: the newer intent stands.
                    with contextlib.suppress(KubeError, KubeUnavailable):
                        await api.replace_alias_if(namespace, name, alias, previous)
                raise ReloadFailed(reason, str(status.get("message") or "rollout failed"))
        if time.monotonic() >= deadline:
            raise ReloadTimeout(
                f"ModelAlias {namespace}/{name} not rolled out to {alias!r} within {timeout:g} s "
                f"(phase {status.get('phase')!r}: {status.get('message', '')})"
            )
        await asyncio.sleep(interval)


async def _move_alias(
    api: ModelAliasApi, namespace: str, name: str, alias: str
) -> tuple[str | None, dict[str, Any]]:
    """(alias followed before, the patched object); the patch applies to the version checked."""
    where = f"ModelAlias {namespace}/{name}"
    for _ in range(PATCH_ATTEMPTS):
        try:
            current = await api.get_modelalias(namespace, name)
            busy = change_in_progress(current, alias)
            if busy is not None:
                raise ReloadInProgress(f"{where} cannot move to {alias!r} now: {busy}; try again later")
            previous = (current.get("spec") or {}).get("alias")
            version = (current.get("metadata") or {}).get("resourceVersion")
            patched = await api.patch_modelalias_spec(
                namespace, name, {"alias": alias}, resource_version=version
            )
        except NotFound as e:
            raise ModelAliasMissing(f"{where} not found") from e
        except Conflict as e:
            if e.status != 409:
                raise
            continue  # changed between the read and the patch (a status write, say): look again
        return previous, patched
    raise ReloadInProgress(f"{where} keeps changing; try again later")
