"""What to do next, read from the status the last step wrote: nothing, mark Ready, or roll out."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from btcf_operator.status import Phase


class Action(StrEnum):
    NOTHING = "nothing"
    MARK_READY = "mark-ready"
    ROLL_OUT = "roll-out"


def plan(status: Mapping[str, Any], generation: int, alias_version: str) -> Action:
    """What to do now that the alias points at ``alias_version`` (no rollout in progress).

    A version whose rollout failed is not retried for the same spec: only a moved alias or a spec
    change starts another attempt, so a bad version does not roll out and back on every poll. The
    same holds for a version the quality gate refused (``Blocked``/``QualityGate``): its verdict
    stands until the alias moves or the spec changes. A gate without a verdict (no recent data,
    facade unreachable) is asked again at the next poll.
    """
    phase = status.get("phase")
    same_generation = status.get("observedGeneration") == generation
    if phase == Phase.FAILED and status.get("failedVersion") == alias_version and same_generation:
        return Action.NOTHING
    if phase == Phase.BLOCKED and same_generation and refused_by_gate(status) == alias_version:
        return Action.NOTHING
    if status.get("resolvedVersion") == alias_version:
        if phase == Phase.READY and same_generation:
            return Action.NOTHING
        return Action.MARK_READY
    return Action.ROLL_OUT


def refused_by_gate(status: Mapping[str, Any]) -> str | None:
    """The version the quality gate refused, as the status records it, or None."""
    gate = status.get("gate") or {}
    if gate.get("decision") == "Refused" and gate.get("candidate"):
        return str(gate["candidate"])
    return None


def is_rolling_out(status: Mapping[str, Any]) -> bool:
    return status.get("phase") == Phase.ROLLING_OUT and bool(status.get("targetVersion"))


def needs_resolving_status(status: Mapping[str, Any], generation: int) -> bool:
    """Whether the status should say ``Resolving`` first: nothing written yet, or a spec not yet looked at."""
    return not status.get("phase") or status.get("observedGeneration") != generation
