"""The rollout target as pure functions: where the version lives, the patch that moves it, the pods."""

from __future__ import annotations

import pytest
from btcf_operator.spec import TargetKind
from btcf_operator.targets import (
    SHAPES,
    VERSION_ANNOTATION,
    TargetError,
    check_pinnable,
    pod_endpoint,
    pod_selector,
    served_version,
    version_patch,
)

from tests.operator.kube_emulator import json_patch
from tests.operator.objects import deployment, inference_service

DEP = TargetKind.DEPLOYMENT
ISVC = TargetKind.INFERENCE_SERVICE


def test_every_target_kind_has_a_shape() -> None:
    assert set(SHAPES) == set(TargetKind)


def test_version_patch_pins_the_deployment_env_and_annotation() -> None:
    target = deployment("p")
    patched = json_patch(target, version_patch(target, DEP, "7"))
    container = patched["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "MODEL_VERSION", "value": "7"} in container["env"]
    assert patched["spec"]["template"]["metadata"]["annotations"][VERSION_ANNOTATION] == "7"
    assert served_version(patched, DEP) == "7"


def test_version_patch_replaces_a_pinned_version_and_keeps_other_env() -> None:
    target = json_patch(deployment("p"), version_patch(deployment("p"), DEP, "7"))
    patched = json_patch(target, version_patch(target, DEP, "8"))
    env = patched["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "MODEL_ALIAS", "value": "production"}, {"name": "MODEL_VERSION", "value": "8"}]
    assert served_version(patched, DEP) == "8"


def test_version_patch_to_none_unpins_env_and_annotation() -> None:
    target = json_patch(deployment("p"), version_patch(deployment("p"), DEP, "7"))
    patched = json_patch(target, version_patch(target, DEP, None))
    assert served_version(patched, DEP) is None
    assert patched["spec"]["template"]["metadata"]["annotations"] == {}
    assert patched["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "MODEL_ALIAS", "value": "production"}
    ]


def test_unpinning_an_unpinned_target_changes_nothing() -> None:
    target = {**deployment("p"), "metadata": {"name": "p", "resourceVersion": "9"}}
    assert version_patch(target, DEP, None) == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "9"}
    ]


def test_version_patch_adds_the_missing_levels_of_env_and_annotations() -> None:
    target = deployment("p")
    del target["spec"]["template"]["metadata"]
    del target["spec"]["template"]["spec"]["containers"][0]["env"]
    ops = version_patch(target, DEP, "3")
    assert ops == [
        {
            "op": "add",
            "path": "/spec/template/spec/containers/0/env",
            "value": [{"name": "MODEL_VERSION", "value": "3"}],
        },
        {
            "op": "add",
            "path": "/spec/template/metadata",
            "value": {"annotations": {VERSION_ANNOTATION: "3"}},
        },
    ]
    assert served_version(json_patch(target, ops), DEP) == "3"


def test_version_patch_on_an_inference_service_targets_the_kserve_container() -> None:
    isvc = {
        "metadata": {"name": "btc-lstm", "resourceVersion": "5"},
        "spec": {"predictor": {"containers": [{"name": "sidecar"}, {"name": "kserve-container"}]}},
    }
    ops = version_patch(isvc, ISVC, "3")
    assert ops[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "5"}
    patched = json_patch(isvc, ops)
    assert patched["spec"]["predictor"]["containers"][1]["env"] == [{"name": "MODEL_VERSION", "value": "3"}]
    assert patched["metadata"]["annotations"][VERSION_ANNOTATION] == "3"
    assert served_version(patched, ISVC) == "3"


def test_the_annotation_wins_over_the_env_when_reading_the_served_version() -> None:
    target = json_patch(deployment("p"), version_patch(deployment("p"), DEP, "7"))
    target["spec"]["template"]["metadata"]["annotations"][VERSION_ANNOTATION] = "8"
    assert served_version(target, DEP) == "8"


def test_a_target_without_containers_has_no_version_patch() -> None:
    with pytest.raises(TargetError):
        version_patch({"spec": {"predictor": {}}}, ISVC, "1")


def test_an_inference_service_on_predictor_model_cannot_be_pinned() -> None:
    with pytest.raises(TargetError, match=r"spec\.predictor\.model"):
        check_pinnable(inference_service("btc-lstm", custom_predictor=False), ISVC)


def test_a_deployment_without_containers_cannot_be_pinned() -> None:
    target = deployment("p")
    target["spec"]["template"]["spec"]["containers"] = []
    with pytest.raises(TargetError, match=r"no spec\.template\.spec\.containers"):
        check_pinnable(target, DEP)


def test_a_custom_predictor_can_be_pinned() -> None:
    check_pinnable(inference_service("btc-lstm"), ISVC)
    check_pinnable(deployment("p"), DEP)


def test_pods_are_selected_by_the_kserve_label_or_the_deployment_selector() -> None:
    isvc = inference_service("btc-lstm", custom_predictor=False)
    assert pod_selector(isvc, ISVC) == {"serving.kserve.io/inferenceservice": "btc-lstm"}
    assert pod_selector(deployment("p", labels={"app": "x"}), DEP) == {"app": "x"}


def test_a_deployment_without_selector_has_no_pods_to_select() -> None:
    unselected = deployment("p")
    del unselected["spec"]["selector"]
    with pytest.raises(TargetError):
        pod_selector(unselected, DEP)


def test_ready_pod_endpoint_uses_the_declared_port() -> None:
    pod = {
        "spec": {"containers": [{"name": "predictor", "ports": [{"name": "http", "containerPort": 9000}]}]},
        "status": {"podIP": "10.0.0.5", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert pod_endpoint(pod, 8080) == "http://10.0.0.5:9000"
    pod["status"]["conditions"][0]["status"] = "False"
    assert pod_endpoint(pod, 8080) is None


def test_a_pod_without_ports_is_reached_on_the_default_port_and_ipv6_is_bracketed() -> None:
    pod = {
        "spec": {"containers": [{"name": "predictor"}]},
        "status": {"podIP": "fd00::5", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert pod_endpoint(pod, 8080) == "http://[fd00::5]:8080"
