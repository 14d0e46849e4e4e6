"""The ModelAlias status as pure builders: phase, reason, conditions and the fields of each state.

Each builder returns the whole status a state writes (a merge patch: None clears a field), so the
reconcile step never assembles status fields itself and every state is tested without a server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from btcf_operator.timing import format_time
from btcforecast.modelalias import BLOCKED


class Phase(StrEnum):
    PENDING = "Pending"
    RESOLVING = "Resolving"
    ROLLING_OUT = "RollingOut"
    READY = "Ready"
    FAILED = "Failed"
    BLOCKED = BLOCKED


class Reason(StrEnum):
    RESOLVING = "Resolving"
    ALIAS_RESOLVED = "AliasResolved"
    ALIAS_NOT_FOUND = "AliasNotFound"
    REGISTRY_UNAVAILABLE = "RegistryUnavailable"
    ROLLING_OUT = "RollingOut"
    ROLLOUT_COMPLETE = "RolloutComplete"
    HOT_RELOAD_COMPLETE = "HotReloadComplete"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    ROLLOUT_FAILED = "RolloutFailed"
    HOT_RELOAD_FAILED = "HotReloadFailed"
    NO_READY_PODS = "NoReadyPods"
    TARGET_NOT_FOUND = "TargetNotFound"
    INVALID_TARGET = "InvalidTarget"
    SERVING = "Serving"
    QUALITY_GATE = "QualityGate"
    GATE_NO_DATA = "GateNoData"
    GATE_UNAVAILABLE = "GateUnavailable"
    GATE_PASSED = "QualityGatePassed"


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool | None
    reason: str
    message: str = ""


def merge_conditions(
    previous: Sequence[Mapping[str, Any]] | None, updates: Sequence[Condition], now: datetime
) -> list[dict[str, Any]]:
    """Conditions with ``updates`` applied; lastTransitionTime changes only when the status does."""
    by_type: dict[str, dict[str, Any]] = {c["type"]: dict(c) for c in previous or [] if "type" in c}
    for update in updates:
        value = "Unknown" if update.status is None else ("True" if update.status else "False")
        old = by_type.get(update.type)
        since = (
            old["lastTransitionTime"]
            if old and old.get("status") == value and old.get("lastTransitionTime")
            else format_time(now)
        )
        by_type[update.type] = {
            "type": update.type,
            "status": value,
            "reason": str(update.reason),
            "message": update.message,
            "lastTransitionTime": since,
        }
    order = {"Resolved": 0, "RolledOut": 1, "Ready": 2}
    return sorted(by_type.values(), key=lambda c: (order.get(c["type"], 9), c["type"]))


def _status(
    previous: Mapping[str, Any],
    generation: int,
    now: datetime,
    *,
    phase: Phase,
    message: str,
    conditions: Sequence[Condition],
    **fields: Any,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": str(phase),
        "observedGeneration": generation,
        "message": message,
        "conditions": merge_conditions(previous.get("conditions"), conditions, now),
    }
    status.update(fields)
    return status


def _resolved(alias: str, version: str) -> Condition:
    return Condition("Resolved", True, Reason.ALIAS_RESOLVED, f"alias {alias!r} points at version {version}")


def rollout_started_status(
    previous: Mapping[str, Any],
    generation: int,
    now: datetime,
    *,
    alias: str,
    target_version: str,
    previous_version: str | None,
    how: str = "rolling out",
    gate: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Written BEFORE the target is touched, so a restarted operator knows what was under way.

    ``how``: the strategy's verb in the message; ``gate``: the quality gate's figures when it let
    this version through (kept in the status).
    """
    message = f"{how} version {target_version} (from {previous_version or 'none'})"
    return _status(
        previous,
        generation,
        now,
        phase=Phase.ROLLING_OUT,
        message=message,
        conditions=[
            _resolved(alias, target_version),
            Condition("RolledOut", False, Reason.ROLLING_OUT, message),
            Condition("Ready", False, Reason.ROLLING_OUT, message),
        ],
        targetVersion=target_version,
        previousVersion=previous_version,
        rolloutStartedAt=format_time(now),
        failedVersion=None,
        **({"gate": dict(gate)} if gate is not None else {}),
    )


def ready_status(
    previous: Mapping[str, Any],
    generation: int,
    now: datetime,
    *,
    alias: str,
    version: str,
    previous_version: str | None,
    reason: Reason = Reason.ROLLOUT_COMPLETE,
) -> dict[str, Any]:
    message = f"serving version {version} of alias {alias!r}"
    return _status(
        previous,
        generation,
        now,
        phase=Phase.READY,
        message=message,
        conditions=[
            _resolved(alias, version),
            Condition("RolledOut", True, reason, message),
            Condition("Ready", True, Reason.SERVING, message),
        ],
        resolvedVersion=version,
        previousVersion=previous_version,
        targetVersion=None,
        rolloutStartedAt=None,
        failedVersion=None,
    )


def rollout_failed_status(
    previous: Mapping[str, Any],
    generation: int,
    now: datetime,
    *,
    alias: str,
    failed_version: str,
    restored_version: str | None,
    reason: Reason,
    detail: str,
) -> dict[str, Any]:
    """The target went back to ``restored_version``; ``failed_version`` is not retried for this spec."""
    restored = (
        f"rolled back to version {restored_version}" if restored_version else "no previous version to restore"
    )
    message = f"version {failed_version} failed ({reason}: {detail}); {restored}"
    return _status(
        previous,
        generation,
        now,
        phase=Phase.FAILED,
        message=message,
        conditions=[
            _resolved(alias, failed_version),
            Condition("RolledOut", False, reason, message),
            Condition("Ready", restored_version is not None, reason, message),
        ],
        # The failed version is what was (briefly, partly) served before the rollback.
        resolvedVersion=restored_version,
        previousVersion=failed_version,
        targetVersion=None,
        rolloutStartedAt=None,
        failedVersion=failed_version,
    )


def gate_blocked_status(
    previous: Mapping[str, Any],
    generation: int,
    now: datetime,
    *,
    alias: str,
    candidate: str,
    incumbent: str,
    reason: Reason,
    detail: str,
    gate: Mapping[str, Any],
) -> dict[str, Any]:
    """The quality gate held ``candidate`` back; ``incumbent`` keeps serving, untouched.

    ``QualityGate`` is a verdict (RolledOut False); ``GateNoData`` and ``GateUnavailable`` are
    not (RolledOut Unknown): the gate is asked again at the next poll.
    """
    message = f"version {candidate} held back ({reason}: {detail}); still serving version {incumbent}"
    verdict: bool | None = False if reason is Reason.QUALITY_GATE else None
    return _status(
        previous,
        generation,
        now,
        phase=Phase.BLOCKED,
        message=message,
        conditions=[
            _resolved(alias, candidate),
            Condition("RolledOut", verdict, reason, message),
            Condition("Ready", True, Reason.SERVING, f"serving version {incumbent}"),
        ],
        resolvedVersion=incumbent,
        targetVersion=None,
        rolloutStartedAt=None,
        failedVersion=None,
        gate=dict(gate),
    )


def resolving_status(
    previous: Mapping[str, Any], generation: int, now: datetime, *, model: str, alias: str
) -> dict[str, Any]:
    """A new resource or a changed spec: asking MLflow where the alias points (the target is untouched)."""
    message = f"resolving alias {alias!r} of model {model!r}"
    return _status(
        previous,
        generation,
        now,
        phase=Phase.RESOLVING,
        message=message,
        conditions=[Condition("Resolved", None, Reason.RESOLVING, message)],
    )


def alias_not_found_status(
    previous: Mapping[str, Any], generation: int, now: datetime, *, model: str, alias: str, retry_in: float
) -> dict[str, Any]:
    served = previous.get("resolvedVersion")
    message = f"model {model!r} has no alias {alias!r}; retrying in {retry_in:.0f} s" + (
        f"; still serving version {served}" if served else ""
    )
    return _status(
        previous,
        generation,
        now,
        phase=Phase.FAILED,
        message=message,
        conditions=[
            Condition("Resolved", False, Reason.ALIAS_NOT_FOUND, message),
            Condition("Ready", False, Reason.ALIAS_NOT_FOUND, message),
        ],
    )


def registry_unavailable_status(
    previous: Mapping[str, Any], generation: int, now: datetime, *, error: str, retry_in: float
) -> dict[str, Any]:
    """MLflow is down: keep the phase (the target still serves what it served), say why."""
    phase = Phase(previous.get("phase") or Phase.RESOLVING)
    if phase is Phase.PENDING:
        phase = Phase.RESOLVING
    message = f"MLflow unreachable, retrying in {retry_in:.0f} s: {error}"
    return _status(
        previous,
        generation,
        now,
        phase=phase,
        message=message,
        conditions=[Condition("Resolved", None, Reason.REGISTRY_UNAVAILABLE, message)],
    )


def target_problem_status(
    previous: Mapping[str, Any], generation: int, now: datetime, *, reason: Reason, detail: str
) -> dict[str, Any]:
    """The target is missing or unusable: Failed, without marking any version as bad."""
    return _status(
        previous,
        generation,
        now,
        phase=Phase.FAILED,
        message=detail,
        conditions=[Condition("RolledOut", False, reason, detail), Condition("Ready", False, reason, detail)],
        targetVersion=None,
        rolloutStartedAt=None,
    )


def condition_reason(status: Mapping[str, Any], condition_type: str) -> str | None:
    """The reason of one condition in ``status``, or None when it has none."""
    for condition in status.get("conditions") or []:
        if condition.get("type") == condition_type:
            return condition.get("reason")
    return None


def status_changed(previous: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether writing ``new`` would change anything (absent and None count as equal, also nested)."""
    return any(_pruned(previous.get(key)) != _pruned(value) for key, value in new.items())


def _pruned(value: Any) -> Any:
    """``value`` without None entries in its mappings: what a merge patch leaves of it."""
    if isinstance(value, Mapping):
        return {k: _pruned(v) for k, v in value.items() if v is not None}
    return value
