"""Whether a rollout is done, failed or under way, read from the target's status."""

from __future__ import annotations

import pytest
from btcf_operator.progress import deployment_progress, inference_service_progress
from btcf_operator.spec import TargetKind
from btcf_operator.targets import target_progress

DEADLINE_EXCEEDED = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}


@pytest.mark.parametrize(
    ("status", "done", "failed"),
    [
        (
            {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2},
            False,
            False,
        ),
        (
            {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 2},
            False,
            False,
        ),
        (
            {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2},
            False,
            False,
        ),
        (
            {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1},
            False,
            False,
        ),
        ({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}, True, False),
        ({"observedGeneration": 2, "conditions": [DEADLINE_EXCEEDED]}, False, True),
        # a deadline exceeded by the previous template says nothing about this one
        ({"observedGeneration": 1, "conditions": [DEADLINE_EXCEEDED]}, False, False),
    ],
)
def test_deployment_progress(status: dict, done: bool, failed: bool) -> None:
    dep = {"metadata": {"generation": 2}, "spec": {"replicas": 2}, "status": status}
    progress = deployment_progress(dep)
    assert (progress.done, progress.failed) == (done, failed)


def test_inference_service_is_rolled_out_when_ready_for_the_current_generation() -> None:
    ready = {"type": "Ready", "status": "True"}
    assert not inference_service_progress(
        {"metadata": {"generation": 2}, "status": {"observedGeneration": 1, "conditions": [ready]}}
    ).done
    assert inference_service_progress(
        {"metadata": {"generation": 2}, "status": {"observedGeneration": 2, "conditions": [ready]}}
    ).done


def test_an_inference_service_not_ready_says_why() -> None:
    not_ready = {"type": "Ready", "status": "False", "message": "revision failed"}
    progress = inference_service_progress(
        {"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "conditions": [not_ready]}}
    )
    assert (progress.done, progress.failed) == (False, False)
    assert progress.message == "InferenceService not ready: revision failed"


def test_the_target_kind_picks_its_progress() -> None:
    dep = {"metadata": {"generation": 1}, "spec": {"replicas": 1}, "status": {"observedGeneration": 1}}
    assert target_progress(TargetKind.DEPLOYMENT, dep).message == "0 of 1 replicas updated"
    assert target_progress(TargetKind.INFERENCE_SERVICE, dep).message.startswith("InferenceService not ready")
