"""Whether a rollout is done, failed or still under way, read from the target's own status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from btcf_operator.paths import dig


@dataclass(frozen=True)
class Progress:
    done: bool
    failed: bool
    message: str


def deployment_progress(deployment: Mapping[str, Any]) -> Progress:
    """Rolled out when the controller saw the change and every replica is updated and available."""
    generation = dig(deployment, ("metadata", "generation")) or 0
    wanted = dig(deployment, ("spec", "replicas"))
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
    generation = dig(isvc, ("metadata", "generation")) or 0
    status = isvc.get("status") or {}
    observed = int(status.get("observedGeneration") or 0)
    if observed < generation:
        return Progress(False, False, f"waiting for KServe to see generation {generation}")
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None or ready.get("status") != "True":
        detail = (ready or {}).get("message") or (ready or {}).get("reason") or "no Ready condition yet"
        return Progress(False, False, f"InferenceService not ready: {detail}")
    return Progress(True, False, "InferenceService ready")
