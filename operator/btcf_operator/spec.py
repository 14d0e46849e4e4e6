"""The ModelAlias spec as typed values: what to follow, what to move, and how."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from btcforecast.modelalias import Gate, GateSpecError, parse_gate


class Strategy(StrEnum):
    ROLLOUT = "Rollout"
    HOT_RELOAD = "HotReload"


class TargetKind(StrEnum):
    INFERENCE_SERVICE = "InferenceService"
    DEPLOYMENT = "Deployment"


class SpecError(ValueError):
    """The resource's spec cannot be acted on (the CRD schema normally refuses it first)."""


@dataclass(frozen=True)
class Spec:
    registered_model: str
    alias: str
    target_kind: TargetKind
    target_name: str
    strategy: Strategy
    poll_seconds: float
    rollout_deadline_seconds: int
    reload_token_secret: tuple[str, str] | None = None
    gate: Gate | None = None


def parse_spec(spec: Mapping[str, Any], *, default_deadline: int, min_poll_seconds: float) -> Spec:
    """The spec as typed values, defaults filled in; SpecError names what is wrong."""
    try:
        target = spec["target"]
        parsed = Spec(
            registered_model=str(spec["registeredModel"]),
            alias=str(spec["alias"]),
            target_kind=TargetKind(target["kind"]),
            target_name=str(target["name"]),
            strategy=Strategy(spec.get("strategy") or Strategy.ROLLOUT),
            poll_seconds=max(float(spec.get("pollSeconds") or 60), min_poll_seconds),
            rollout_deadline_seconds=int(spec.get("rolloutDeadlineSeconds") or default_deadline),
            reload_token_secret=_secret_ref(spec.get("reloadTokenSecret")),
            gate=parse_gate(spec),
        )
    except GateSpecError as e:
        raise SpecError(str(e)) from e
    except KeyError as e:
        raise SpecError(f"spec is missing {e.args[0]!r}") from e
    except (TypeError, ValueError) as e:
        raise SpecError(f"spec is invalid: {e}") from e
    if not parsed.registered_model or not parsed.alias or not parsed.target_name:
        raise SpecError("spec.registeredModel, spec.alias and spec.target.name must not be empty")
    return parsed


def _secret_ref(ref: Any) -> tuple[str, str] | None:
    if not ref:
        return None
    return str(ref["name"]), str(ref["key"])
