"""The operator's decisions as pure functions: patches, progress, plans, status and conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from btcf_operator import decisions as d

from tests.operator.kube_emulator import json_patch
from tests.operator.objects import deployment

NOW = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
DEP = d.TargetKind.DEPLOYMENT


def test_version_patch_pins_the_deployment_env_and_annotation() -> None:
    target = deployment("p")
    patched = json_patch(target, d.version_patch(target, DEP, "7"))
    assert {"name": "MODEL_VERSION", "value": "7"} in patched["spec"]["template"]["spec"]["containers"][0][
        "env"
    ]
    assert patched["spec"]["template"]["metadata"]["annotations"][d.VERSION_ANNOTATION] == "7"
    assert d.served_version(patched, DEP) == "7"


def test_version_patch_replaces_a_pinned_version_and_keeps_other_env() -> None:
    target = json_patch(deployment("p"), d.version_patch(deployment("p"), DEP, "7"))
    patched = json_patch(target, d.version_patch(target, DEP, "8"))
    env = patched["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "MODEL_ALIAS", "value": "production"}, {"name": "MODEL_VERSION", "value": "8"}]


def test_version_patch_to_none_unpins() -> None:
    target = json_patch(deployment("p"), d.version_patch(deployment("p"), DEP, "7"))
    patched = json_patch(target, d.version_patch(target, DEP, None))
    assert d.served_version(patched, DEP) is None


def test_version_patch_on_an_inference_service_targets_the_kserve_container() -> None:
    isvc = {
        "metadata": {"name": "btc-lstm", "resourceVersion": "5"},
        "spec": {"predictor": {"containers": [{"name": "sidecar"}, {"name": "kserve-container"}]}},
    }
    ops = d.version_patch(isvc, d.TargetKind.INFERENCE_SERVICE, "3")
    assert ops[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "5"}
    patched = json_patch(isvc, ops)
    assert patched["spec"]["predictor"]["containers"][1]["env"] == [{"name": "MODEL_VERSION", "value": "3"}]
    assert patched["metadata"]["annotations"][d.VERSION_ANNOTATION] == "3"


def test_a_target_without_containers_is_refused() -> None:
    with pytest.raises(d.TargetError):
        d.version_patch({"spec": {"predictor": {}}}, d.TargetKind.INFERENCE_SERVICE, "1")


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
        (
            {
                "observedGeneration": 2,
                "conditions": [
                    {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
                ],
            },
            False,
            True,
        ),
        (  # a deadline exceeded by the previous template says nothing about this one
            {
                "observedGeneration": 1,
                "conditions": [
                    {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
                ],
            },
            False,
            False,
        ),
    ],
)
def test_deployment_progress(status: dict, done: bool, failed: bool) -> None:
    dep = {"metadata": {"generation": 2}, "spec": {"replicas": 2}, "status": status}
    progress = d.deployment_progress(dep)
    assert (progress.done, progress.failed) == (done, failed)


def test_inference_service_is_rolled_out_when_ready_for_the_current_generation() -> None:
    ready = {"type": "Ready", "status": "True"}
    assert not d.inference_service_progress(
        {"metadata": {"generation": 2}, "status": {"observedGeneration": 1, "conditions": [ready]}}
    ).done
    assert d.inference_service_progress(
        {"metadata": {"generation": 2}, "status": {"observedGeneration": 2, "conditions": [ready]}}
    ).done


def test_deadline() -> None:
    started = d.format_time(NOW)
    assert not d.deadline_passed(started, 300, NOW + timedelta(seconds=299))
    assert d.deadline_passed(started, 300, NOW + timedelta(seconds=301))


@pytest.mark.parametrize(
    ("status", "generation", "version", "action"),
    [
        ({}, 1, "3", d.Action.ROLL_OUT),
        ({"phase": "Ready", "resolvedVersion": "3", "observedGeneration": 1}, 1, "3", d.Action.NOTHING),
        ({"phase": "Ready", "resolvedVersion": "3", "observedGeneration": 1}, 2, "3", d.Action.MARK_READY),
        ({"phase": "Ready", "resolvedVersion": "3", "observedGeneration": 1}, 1, "4", d.Action.ROLL_OUT),
        (
            {"phase": "Failed", "failedVersion": "4", "resolvedVersion": "3", "observedGeneration": 1},
            1,
            "4",
            d.Action.NOTHING,
        ),
        (
            {"phase": "Failed", "failedVersion": "4", "resolvedVersion": "3", "observedGeneration": 1},
            2,
            "4",
            d.Action.ROLL_OUT,
        ),
        ({"phase": "Failed", "resolvedVersion": "3", "observedGeneration": 1}, 1, "3", d.Action.MARK_READY),
    ],
)
def test_plan(status: dict, generation: int, version: str, action: d.Action) -> None:
    assert d.plan(status, generation, version) is action


def test_transition_time_changes_only_when_a_condition_changes_status() -> None:
    first = d.ready_status({}, 1, NOW, alias="production", version="3", previous_version=None)
    later = NOW + timedelta(minutes=5)
    again = d.ready_status(first, 2, later, alias="production", version="3", previous_version=None)
    assert d.merge_conditions(first["conditions"], [], later) == first["conditions"]
    assert [c["lastTransitionTime"] for c in again["conditions"]] == [d.format_time(NOW)] * 3
    failed = d.rollout_failed_status(
        again,
        2,
        later,
        alias="production",
        failed_version="4",
        restored_version="3",
        reason=d.Reason.DEADLINE_EXCEEDED,
        detail="late",
    )
    times = {c["type"]: c["lastTransitionTime"] for c in failed["conditions"]}
    assert times == {
        "Resolved": d.format_time(NOW),
        "RolledOut": d.format_time(later),
        "Ready": d.format_time(NOW),
    }


def test_a_failed_rollout_status_names_the_restored_and_the_failed_version() -> None:
    status = d.rollout_failed_status(
        {},
        1,
        NOW,
        alias="production",
        failed_version="4",
        restored_version="3",
        reason=d.Reason.DEADLINE_EXCEEDED,
        detail="late",
    )
    assert (status["phase"], status["resolvedVersion"], status["failedVersion"]) == ("Failed", "3", "4")
    assert "rolled back to version 3" in status["message"]


def test_a_rollout_started_status_records_what_a_restarted_operator_needs() -> None:
    status = d.rollout_started_status(
        {}, 1, NOW, alias="production", target_version="4", previous_version="3", strategy=d.Strategy.ROLLOUT
    )
    assert d.is_rolling_out(status)
    assert (status["targetVersion"], status["previousVersion"], status["rolloutStartedAt"]) == (
        "4",
        "3",
        d.format_time(NOW),
    )


def test_ready_pod_endpoint_uses_the_declared_port() -> None:
    pod = {
        "spec": {"containers": [{"name": "predictor", "ports": [{"name": "http", "containerPort": 9000}]}]},
        "status": {"podIP": "10.0.0.5", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert d.pod_endpoint(pod, 8080) == "http://10.0.0.5:9000"
    pod["status"]["conditions"][0]["status"] = "False"
    assert d.pod_endpoint(pod, 8080) is None


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [d.backoff(n, 5, 30) for n in range(5)] == [5, 10, 20, 30, 30]


def test_an_inference_service_on_predictor_model_is_an_invalid_rollout_target() -> None:
    isvc = {
        "metadata": {"name": "btc-lstm"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "x"}}}},
    }
    with pytest.raises(d.TargetError, match=r"spec\.predictor\.model"):
        d.check_target(isvc, d.TargetKind.INFERENCE_SERVICE, d.Strategy.ROLLOUT)


def test_a_deployment_without_containers_is_an_invalid_rollout_target() -> None:
    target = deployment("p")
    target["spec"]["template"]["spec"]["containers"] = []
    with pytest.raises(d.TargetError, match=r"no spec\.template\.spec\.containers"):
        d.check_target(target, DEP, d.Strategy.ROLLOUT)


def test_hot_reload_needs_only_the_pods_selector_of_the_target() -> None:
    isvc = {"metadata": {"name": "btc-lstm"}, "spec": {"predictor": {"model": {}}}}
    d.check_target(isvc, d.TargetKind.INFERENCE_SERVICE, d.Strategy.HOT_RELOAD)
    d.check_target(deployment("p"), DEP, d.Strategy.ROLLOUT)
    unselected = deployment("p")
    del unselected["spec"]["selector"]
    with pytest.raises(d.TargetError):
        d.check_target(unselected, DEP, d.Strategy.HOT_RELOAD)


@pytest.mark.parametrize(
    ("status", "generation", "resolving"),
    [
        ({}, 1, True),
        ({"phase": "Ready", "observedGeneration": 1}, 2, True),
        ({"phase": "Ready", "observedGeneration": 2}, 2, False),
        ({"phase": "Failed", "observedGeneration": 2}, 2, False),  # a retry, not a new spec
    ],
)
def test_resolving_is_written_for_a_new_resource_or_a_new_spec_only(
    status: dict, generation: int, resolving: bool
) -> None:
    assert d.needs_resolving_status(status, generation) is resolving


def test_a_resolving_status_keeps_what_is_served_and_marks_resolution_unknown() -> None:
    ready = d.ready_status({}, 1, NOW, alias="production", version="3", previous_version=None)
    status = {**ready, **d.resolving_status(ready, 2, NOW, model="btc-lstm", alias="staging")}
    assert (status["phase"], status["observedGeneration"], status["resolvedVersion"]) == ("Resolving", 2, "3")
    resolved = next(c for c in status["conditions"] if c["type"] == "Resolved")
    assert (resolved["status"], resolved["reason"]) == ("Unknown", "Resolving")
