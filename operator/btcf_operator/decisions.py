"""What the operator decides, as pure functions: no I/O, no clock, no kopf.

Given the resource, the target object and what MLflow says, these functions answer: what to do
next, which JSON patch moves the target to a version, whether a rollout is done, failed or late,
and which status to write. The handlers only fetch inputs and carry out the answers, so every
decision is tested without a server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from btcforecast.modelalias import BLOCKED, Gate, GateSpecError, parse_gate

VERSION_ENV = "MODEL_VERSION"
VERSION_ANNOTATION = "serving.btcforecast.io/model-version"
PREFERRED_CONTAINERS = ("kserve-container", "predictor")
"""The predictor container: the first of these names present, else the first container."""

ISVC_POD_LABEL = "serving.kserve.io/inferenceservice"


class Phase(StrEnum):
    PENDING = "Pending"
    RESOLVING = "Resolving"
    ROLLING_OUT = "RollingOut"
    READY = "Ready"
    FAILED = "Failed"
    BLOCKED = BLOCKED


class Strategy(StrEnum):
    ROLLOUT = "Rollout"
    HOT_RELOAD = "HotReload"


class TargetKind(StrEnum):
    INFERENCE_SERVICE = "InferenceService"
    DEPLOYMENT = "Deployment"


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


class SpecError(ValueError):
    """The resource's spec cannot be acted on (the CRD schema normally refuses it first)."""


class TargetError(ValueError):
    """The target object has no shape we can patch (no containers, say)."""


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


# --- the target: where the version lives, and the patch that changes it -------------------------


def _containers_path(kind: TargetKind) -> tuple[str, ...]:
    if kind is TargetKind.INFERENCE_SERVICE:
        return ("spec", "predictor", "containers")
    return ("spec", "template", "spec", "containers")


def _annotations_parent(kind: TargetKind) -> tuple[str, ...]:
    if kind is TargetKind.INFERENCE_SERVICE:
        return ("metadata",)
    return ("spec", "template", "metadata")


def _dig(obj: Mapping[str, Any], path: Sequence[str]) -> Any:
    node: Any = obj
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _pointer(path: Sequence[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def predictor_container_index(containers: Sequence[Mapping[str, Any]]) -> int:
    """Index of the predictor container: a preferred name if present, else the first."""
    if not containers:
        raise TargetError("the target has no containers")
    names = [c.get("name") for c in containers]
    for preferred in PREFERRED_CONTAINERS:
        if preferred in names:
            return names.index(preferred)
    return 0


def served_version(target: Mapping[str, Any], kind: TargetKind) -> str | None:
    """The version the target is configured to serve: its annotation, else its MODEL_VERSION env."""
    annotations = _dig(target, (*_annotations_parent(kind), "annotations")) or {}
    if annotations.get(VERSION_ANNOTATION):
        return str(annotations[VERSION_ANNOTATION])
    containers = _dig(target, _containers_path(kind)) or []
    if not containers:
        return None
    env = containers[predictor_container_index(containers)].get("env") or []
    for item in env:
        if item.get("name") == VERSION_ENV and item.get("value") is not None:
            return str(item["value"])
    return None


def version_patch(target: Mapping[str, Any], kind: TargetKind, version: str | None) -> list[dict[str, Any]]:
    """A JSON patch pinning the predictor container to ``version`` (``None``: unpin it).

    JSON patch rather than a merge patch: a merge patch replaces whole lists, so it would drop the
    other containers' settings on an InferenceService (a custom resource has no strategic merge).
    A ``test`` of the resourceVersion guards the list indexes against a concurrent change.
    """
    containers_path = _containers_path(kind)
    containers = _dig(target, containers_path) or []
    index = predictor_container_index(containers)
    ops: list[dict[str, Any]] = []
    resource_version = _dig(target, ("metadata", "resourceVersion"))
    if resource_version is not None:
        ops.append({"op": "test", "path": "/metadata/resourceVersion", "value": resource_version})

    env_path = (*containers_path, index, "env")
    env = containers[index].get("env")
    position = next((i for i, item in enumerate(env or []) if item.get("name") == VERSION_ENV), None)
    if version is None:
        if position is not None:
            ops.append({"op": "remove", "path": _pointer((*env_path, position))})
    elif env is None:
        ops.append(
            {"op": "add", "path": _pointer(env_path), "value": [{"name": VERSION_ENV, "value": version}]}
        )
    elif position is None:
        ops.append(
            {
                "op": "add",
                "path": _pointer((*env_path, "-")),
                "value": {"name": VERSION_ENV, "value": version},
            }
        )
    else:
        ops.append(
            {
                "op": "replace",
                "path": _pointer((*env_path, position)),
                "value": {"name": VERSION_ENV, "value": version},
            }
        )

    parent = _annotations_parent(kind)
    annotations = _dig(target, (*parent, "annotations"))
    if version is None:
        if annotations and VERSION_ANNOTATION in annotations:
            ops.append({"op": "remove", "path": _pointer((*parent, "annotations", VERSION_ANNOTATION))})
    elif _dig(target, parent) is None:
        ops.append(
            {"op": "add", "path": _pointer(parent), "value": {"annotations": {VERSION_ANNOTATION: version}}}
        )
    elif annotations is None:
        ops.append(
            {"op": "add", "path": _pointer((*parent, "annotations")), "value": {VERSION_ANNOTATION: version}}
        )
    else:
        ops.append(
            {"op": "add", "path": _pointer((*parent, "annotations", VERSION_ANNOTATION)), "value": version}
        )
    return ops


def check_target(target: Mapping[str, Any], kind: TargetKind, strategy: Strategy) -> None:
    """Raise :class:`TargetError` when ``strategy`` cannot act on ``target``.

    Checked before a rollout is recorded, so a target the operator cannot move ends the step in
    ``Failed``/``InvalidTarget`` instead of a rollout that can neither progress nor roll back.
    Rollout pins the version on a container; HotReload finds the pods by the target's selector.
    """
    if strategy is Strategy.HOT_RELOAD:
        pod_selector(target, kind)
        return
    containers = _dig(target, _containers_path(kind))
    if isinstance(containers, list) and containers:
        return
    where = ".".join(_containers_path(kind))
    model_spec = _dig(target, ("spec", "predictor", "model"))
    if kind is TargetKind.INFERENCE_SERVICE and isinstance(model_spec, Mapping):
        raise TargetError(
            f"the InferenceService uses spec.predictor.model; the operator pins the version on a "
            f"container of {where} (a custom predictor), which it has none of"
        )
    raise TargetError(f"the {kind} has no {where} to pin the version on")


def pod_selector(target: Mapping[str, Any], kind: TargetKind) -> dict[str, str]:
    """Labels that select the target's pods."""
    if kind is TargetKind.INFERENCE_SERVICE:
        return {ISVC_POD_LABEL: str(_dig(target, ("metadata", "name")))}
    labels = _dig(target, ("spec", "selector", "matchLabels")) or {}
    if not labels:
        raise TargetError("the Deployment has no spec.selector.matchLabels")
    return {str(k): str(v) for k, v in labels.items()}


def pod_endpoint(pod: Mapping[str, Any], default_port: int) -> str | None:
    """``http://ip:port`` of a ready pod's predictor, or None when the pod is not ready."""
    ip = _dig(pod, ("status", "podIP"))
    if not ip or _dig(pod, ("metadata", "deletionTimestamp")):
        return None
    conditions = _dig(pod, ("status", "conditions")) or []
    if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
        return None
    containers = _dig(pod, ("spec", "containers")) or []
    port = default_port
    if containers:
        ports = containers[predictor_container_index(containers)].get("ports") or []
        named = [p for p in ports if p.get("name") in ("http", "http1", "h2c")]
        if named or ports:
            port = int((named or ports)[0]["containerPort"])
    host = f"[{ip}]" if ":" in str(ip) else ip
    return f"http://{host}:{port}"


# --- rollout progress ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    done: bool
    failed: bool
    message: str


def deployment_progress(deployment: Mapping[str, Any]) -> Progress:
    """Rolled out when the controller saw the change and every replica is updated and available."""
    generation = _dig(deployment, ("metadata", "generation")) or 0
    wanted = _dig(deployment, ("spec", "replicas"))
    wanted = 1 if wanted is None else int(wanted)
    status = deployment.get("status") or {}
    observed = int(status.get("observedGeneration") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    total = int(status.get("replicas") or 0)
    if observed < generation:  # conditions until then are about the template before the change
        return Progress(False, False, f"waiting for the controller to see generation {generation}")
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return Progress(
                False, True, f"Deployment progress deadline exceeded: {condition.get('message', '')}"
            )
    if updated < wanted:
        return Progress(False, False, f"{updated} of {wanted} replicas updated")
    if total > updated:
        return Progress(False, False, f"{total - updated} old replicas pending termination")
    if available < wanted:
        return Progress(False, False, f"{available} of {wanted} updated replicas available")
    return Progress(True, False, f"{wanted} replicas updated and available")


def inference_service_progress(isvc: Mapping[str, Any]) -> Progress:
    """Rolled out when KServe reconciled this generation and reports the service Ready."""
    generation = _dig(isvc, ("metadata", "generation")) or 0
    status = isvc.get("status") or {}
    observed = int(status.get("observedGeneration") or 0)
    if observed < generation:
        return Progress(False, False, f"waiting for KServe to see generation {generation}")
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None or ready.get("status") != "True":
        detail = (ready or {}).get("message") or (ready or {}).get("reason") or "no Ready condition yet"
        return Progress(False, False, f"InferenceService not ready: {detail}")
    return Progress(True, False, "InferenceService ready")


def target_progress(kind: TargetKind, target: Mapping[str, Any]) -> Progress:
    if kind is TargetKind.INFERENCE_SERVICE:
        return inference_service_progress(target)
    return deployment_progress(target)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def deadline_passed(started_at: str | None, deadline_seconds: float, now: datetime) -> bool:
    """True once ``deadline_seconds`` have passed since ``started_at`` (a missing start: now)."""
    started = parse_time(started_at)
    return started is not None and now - started > timedelta(seconds=deadline_seconds)


# --- what to do after resolving the alias --------------------------------------------------------


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


# --- status --------------------------------------------------------------------------------------


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
    strategy: Strategy,
    gate: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Written BEFORE the target is touched, so a restarted operator knows what was under way.

    ``gate``: the quality gate's figures when it let this version through (kept in the status).
    """
    how = "hot-reloading" if strategy is Strategy.HOT_RELOAD else "rolling out"
    message = f"{how} version {target_version} (from {previous_version or 'none'})"
    return _status(
        previous,
        generation,
        now,
        Phase.ROLLING_OUT,
        message,
        [
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
        Phase.READY,
        message,
        [
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
        Phase.FAILED,
        message,
        [
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
        Phase.BLOCKED,
        message,
        [
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
        Phase.RESOLVING,
        message,
        [Condition("Resolved", None, Reason.RESOLVING, message)],
    )


def needs_resolving_status(status: Mapping[str, Any], generation: int) -> bool:
    """Whether the status should say ``Resolving`` first: nothing written yet, or a spec not yet looked at."""
    return not status.get("phase") or status.get("observedGeneration") != generation


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
        Phase.FAILED,
        message,
        [
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
        phase,
        message,
        [Condition("Resolved", None, Reason.REGISTRY_UNAVAILABLE, message)],
    )


def target_problem_status(
    previous: Mapping[str, Any], generation: int, now: datetime, *, reason: Reason, detail: str
) -> dict[str, Any]:
    """The target is missing or unusable: Failed, without marking any version as bad."""
    return _status(
        previous,
        generation,
        now,
        Phase.FAILED,
        detail,
        [Condition("RolledOut", False, reason, detail), Condition("Ready", False, reason, detail)],
        targetVersion=None,
        rolloutStartedAt=None,
    )


def status_changed(previous: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether writing ``new`` would change anything (absent and None count as equal, also nested)."""
    return any(_pruned(previous.get(key)) != _pruned(value) for key, value in new.items())


def _pruned(value: Any) -> Any:
    """``value`` without None entries in its mappings: what a merge patch leaves of it."""
    if isinstance(value, Mapping):
        return {k: _pruned(v) for k, v in value.items() if v is not None}
    return value


def backoff(attempt: int, initial: float, maximum: float) -> float:
    """Exponential backoff: initial, 2x, 4x, ... capped at ``maximum``."""
    return min(initial * (2 ** max(attempt, 0)), maximum)
