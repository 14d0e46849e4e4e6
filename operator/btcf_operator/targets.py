"""The rollout target: where each kind keeps the version, the JSON patch that changes it, its pods.

One :class:`TargetShape` per target kind (``SHAPES``) says where that kind keeps its predictor
containers, its version annotation and its pods' labels, and how its progress reads; every builder
here looks the shape up instead of branching on the kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from btcf_operator.paths import Path, dig, pointer
from btcf_operator.progress import Progress, deployment_progress, inference_service_progress
from btcf_operator.spec import TargetKind

VERSION_ENV = "MODEL_VERSION"
VERSION_ANNOTATION = "serving.btcforecast.io/model-version"
PREFERRED_CONTAINERS = ("kserve-container", "predictor")
"""The predictor container: the first of these names present, else the first container."""

ISVC_POD_LABEL = "serving.kserve.io/inferenceservice"


class TargetError(ValueError):
    """The target object has no shape we can act on (no containers, no pod selector, say)."""


def _isvc_pod_labels(isvc: Mapping[str, Any]) -> dict[str, str]:
    return {ISVC_POD_LABEL: str(dig(isvc, ("metadata", "name")))}


def _deployment_pod_labels(deployment: Mapping[str, Any]) -> dict[str, str]:
    labels = dig(deployment, ("spec", "selector", "matchLabels")) or {}
    if not labels:
        raise TargetError("the Deployment has no spec.selector.matchLabels")
    return {str(k): str(v) for k, v in labels.items()}


@dataclass(frozen=True)
class TargetShape:
    """Where one kind of target keeps what the operator reads and writes."""

    containers: Path
    """The list of pod containers, one of which is the predictor."""
    annotations_parent: Path
    """The metadata that carries the version annotation (the pods' template for a Deployment)."""
    pod_labels: Callable[[Mapping[str, Any]], dict[str, str]]
    progress: Callable[[Mapping[str, Any]], Progress]
    model_spec: Path | None = None
    """Where a predictor without containers is declared instead (KServe's built-in model servers)."""


SHAPES: dict[TargetKind, TargetShape] = {
    TargetKind.INFERENCE_SERVICE: TargetShape(
        containers=("spec", "predictor", "containers"),
        annotations_parent=("metadata",),
        pod_labels=_isvc_pod_labels,
        progress=inference_service_progress,
        model_spec=("spec", "predictor", "model"),
    ),
    TargetKind.DEPLOYMENT: TargetShape(
        containers=("spec", "template", "spec", "containers"),
        annotations_parent=("spec", "template", "metadata"),
        pod_labels=_deployment_pod_labels,
        progress=deployment_progress,
    ),
}


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
    shape = SHAPES[kind]
    annotations = dig(target, (*shape.annotations_parent, "annotations")) or {}
    if annotations.get(VERSION_ANNOTATION):
        return str(annotations[VERSION_ANNOTATION])
    containers = dig(target, shape.containers) or []
    if not containers:
        return None
    env = containers[predictor_container_index(containers)].get("env") or []
    for item in env:
        if item.get("name") == VERSION_ENV and item.get("value") is not None:
            return str(item["value"])
    return None


def target_progress(kind: TargetKind, target: Mapping[str, Any]) -> Progress:
    return SHAPES[kind].progress(target)


# --- the version patch ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Slot:
    """One place the version is written: an entry of a list or mapping that may not exist yet."""

    collection: Path
    """The list (env) or mapping (annotations) that holds the entry."""
    found: str | int | None
    """Where the entry is now (its index or key), None when absent."""
    append: str
    """The pointer token that adds an entry: ``-`` for a list, the key for a mapping."""
    entry: Any
    """The entry that pins the version."""
    alone: Any
    """The collection holding only that entry (written when the collection is missing)."""


def _slots(target: Mapping[str, Any], shape: TargetShape, version: str | None) -> list[_Slot]:
    containers = dig(target, shape.containers) or []
    env_path = (*shape.containers, predictor_container_index(containers), "env")
    env = dig(target, env_path) or []
    position = next((i for i, item in enumerate(env) if item.get("name") == VERSION_ENV), None)
    annotations_path = (*shape.annotations_parent, "annotations")
    annotations = dig(target, annotations_path) or {}
    pinned = {"name": VERSION_ENV, "value": version}
    return [
        _Slot(env_path, position, "-", pinned, [pinned]),
        _Slot(
            annotations_path,
            VERSION_ANNOTATION if VERSION_ANNOTATION in annotations else None,
            VERSION_ANNOTATION,
            version,
            {VERSION_ANNOTATION: version},
        ),
    ]


def _slot_ops(target: Mapping[str, Any], slot: _Slot, version: str | None) -> list[dict[str, Any]]:
    """Remove the entry (``version`` None), replace it, or add it with whatever levels are missing."""
    if version is None:
        return (
            [] if slot.found is None else [{"op": "remove", "path": pointer((*slot.collection, slot.found))}]
        )
    if slot.found is not None:
        return [{"op": "replace", "path": pointer((*slot.collection, slot.found)), "value": slot.entry}]
    for depth in range(1, len(slot.collection) + 1):
        if dig(target, slot.collection[:depth]) is None:
            value = slot.alone
            for key in reversed(slot.collection[depth:]):
                value = {key: value}
            return [{"op": "add", "path": pointer(slot.collection[:depth]), "value": value}]
    return [{"op": "add", "path": pointer((*slot.collection, slot.append)), "value": slot.entry}]


def version_patch(target: Mapping[str, Any], kind: TargetKind, version: str | None) -> list[dict[str, Any]]:
    """A JSON patch pinning the predictor container to ``version`` (``None``: unpin it).

    The version goes into two slots, the container's ``MODEL_VERSION`` env and the version
    annotation, each written the same way. JSON patch rather than a merge patch: a merge patch
    replaces whole lists, so it would drop the other containers' settings on an InferenceService
    (a custom resource has no strategic merge). A ``test`` of the resourceVersion guards the list
    indexes against a concurrent change.
    """
    ops: list[dict[str, Any]] = []
    resource_version = dig(target, ("metadata", "resourceVersion"))
    if resource_version is not None:
        ops.append({"op": "test", "path": "/metadata/resourceVersion", "value": resource_version})
    for slot in _slots(target, SHAPES[kind], version):
        ops.extend(_slot_ops(target, slot, version))
    return ops


# --- what a strategy needs of the target ----------------------------------------------------------


def check_pinnable(target: Mapping[str, Any], kind: TargetKind) -> None:
    """Raise :class:`TargetError` unless the target has a container to pin the version on (Rollout)."""
    shape = SHAPES[kind]
    containers = dig(target, shape.containers)
    if isinstance(containers, list) and containers:
        return
    where = ".".join(map(str, shape.containers))
    if shape.model_spec is not None and isinstance(dig(target, shape.model_spec), Mapping):
        raise TargetError(
            f"the {kind} uses {'.'.join(map(str, shape.model_spec))}; the operator pins the version on a "
            f"container of {where} (a custom predictor), which it has none of"
        )
    raise TargetError(f"the {kind} has no {where} to pin the version on")


def pod_selector(target: Mapping[str, Any], kind: TargetKind) -> dict[str, str]:
    """Labels that select the target's pods (HotReload); TargetError when there are none."""
    return SHAPES[kind].pod_labels(target)


def pod_endpoint(pod: Mapping[str, Any], default_port: int) -> str | None:
    """``http://ip:port`` of a ready pod's predictor, or None when the pod is not ready."""
    ip = dig(pod, ("status", "podIP"))
    if not ip or dig(pod, ("metadata", "deletionTimestamp")):
        return None
    conditions = dig(pod, ("status", "conditions")) or []
    if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
        return None
    containers = dig(pod, ("spec", "containers")) or []
    port = default_port
    if containers:
        ports = containers[predictor_container_index(containers)].get("ports") or []
        named = [p for p in ports if p.get("name") in ("http", "http1", "h2c")]
        if named or ports:
            port = int((named or ports)[0]["containerPort"])
    host = f"[{ip}]" if ":" in str(ip) else ip
    return f"http://{host}:{port}"
