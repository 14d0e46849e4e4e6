"""What a chart user sets per component reaches that component's pods: annotations, scheduling,
extra env, an image digest; and a changed Secret rolls the pods that read it."""

from __future__ import annotations

import pytest
from chart_helpers import VALUE_SETS, containers_of, find, pod_spec_of

# component values block -> (kind, component label) of the object holding its pods.
COMPONENTS = {
    "minio": ("Deployment", "minio"),
    "mlflow": ("Deployment", "mlflow"),
    "predictor": ("Deployment", "predictor"),
    "facade": ("Deployment", "facade"),
    "callback": ("Deployment", "callback"),
    "operator": ("Deployment", "operator"),
    "seed": ("Job", "seed"),
}
IMAGES = ["minio", "mlflow", "predictor", "facade", "callback", "operator"]
DIGEST = "sha256:" + "ab" * 32


def pod_values(component: str) -> dict:
    return {
        "podAnnotations": {"example.com/team": component},
        "nodeSelector": {"example.com/pool": component},
        "tolerations": [{"key": "dedicated", "value": component, "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
        "extraEnv": [{"name": "EXTRA_SETTING", "value": component}],
    }


def the_pods_of(docs, component: str) -> tuple[dict, dict]:
    kind, label = COMPONENTS[component]
    [workload] = find(docs, kind, label)
    return workload, workload["spec"]["template"]


def pod_annotations(workload: dict) -> dict[str, str]:
    if workload["kind"] == "InferenceService":
        return workload["spec"]["predictor"].get("annotations", {})
    return workload["spec"]["template"]["metadata"].get("annotations", {})


@pytest.mark.parametrize("component", list(COMPONENTS))
def test_pod_values_of_a_component_reach_its_pods_and_only_its_pods(render, component: str) -> None:
    values = {component: pod_values(component)}
    docs = render(values)
    _, template = the_pods_of(docs, component)
    pod = template["spec"]
    assert template["metadata"]["annotations"]["example.com/team"] == component
    assert pod["nodeSelector"] == values[component]["nodeSelector"]
    assert pod["tolerations"] == values[component]["tolerations"]
    assert pod["affinity"] == values[component]["affinity"]
    [main] = pod["containers"]
    assert {"name": "EXTRA_SETTING", "value": component} in main["env"]
    for other in set(COMPONENTS) - {component}:
        _, template = the_pods_of(docs, other)
        assert "nodeSelector" not in template["spec"], other


def test_pod_values_of_the_predictor_reach_the_inferenceservice(render) -> None:
    values = {"predictor": {**pod_values("predictor"), "kserve": {"enabled": True}}}
    [isvc] = find(render(values), "InferenceService")
    predictor = isvc["spec"]["predictor"]
    assert predictor["annotations"]["example.com/team"] == "predictor"
    assert predictor["nodeSelector"] == {"example.com/pool": "predictor"}
    assert predictor["tolerations"] and predictor["affinity"]
    assert {"name": "EXTRA_SETTING", "value": "predictor"} in predictor["containers"][0]["env"]


@pytest.mark.parametrize("component", IMAGES)
def test_an_image_digest_pins_the_image_instead_of_the_tag(render, component: str) -> None:
    docs = render({component: {"image": {"digest": DIGEST, "registry": "registry.example.com"}}})
    workload, _ = the_pods_of(docs, component)
    [main] = pod_spec_of(workload)["containers"]
    repository = {"minio": "pgsty/silo"}.get(component, f"btc-forecast/{component}")
    assert main["image"] == f"registry.example.com/{repository}@{DIGEST}"
    skips = workload["metadata"].get("annotations", {})
    assert not any(v.startswith("CKV_K8S_43=") for v in skips.values()), "a pinned image needs no skip"


def test_an_image_given_by_tag_carries_its_written_skip(render) -> None:
    [dep] = find(render({}), "Deployment", "facade")
    skips = [v for k, v in dep["metadata"]["annotations"].items() if k.startswith("checkov.io/skip")]
    assert any(v.startswith("CKV_K8S_43=") and "image.digest" in v for v in skips)


def checksums(docs, component: str) -> dict[str, str]:
    if component == "predictor-kserve":
        [isvc] = find(docs, "InferenceService")
        found = pod_annotations(isvc)
    else:
        workload, _ = the_pods_of(docs, component)
        found = pod_annotations(workload)
    return {k: v for k, v in found.items() if k.startswith("checksum/")}


@pytest.mark.parametrize("component", ["facade", "predictor", "callback", "operator"])
def test_a_changed_token_rolls_the_pods_that_read_it(render, component: str) -> None:
    tokens = ("apiToken", "reloadToken", "callbackSecret")
    before = checksums(render({"secrets": dict.fromkeys(tokens, "a" * 64)}), component)
    after = checksums(render({"secrets": dict.fromkeys(tokens, "b" * 64)}), component)
    assert before["checksum/secrets"] != after["checksum/secrets"]


@pytest.mark.parametrize("component", ["minio", "mlflow", "facade", "predictor"])
def test_changed_object_store_keys_roll_the_pods_that_use_them(render, component: str) -> None:
    keys = {"rootPassword": "p" * 40}
    before = checksums(render({"minio": {"auth": {"rootUser": "user-a", **keys}}}), component)
    after = checksums(render({"minio": {"auth": {"rootUser": "user-b", **keys}}}), component)
    assert before["checksum/s3-secret"] != after["checksum/s3-secret"]


def test_an_unchanged_release_keeps_its_checksums(render) -> None:
    """The tokens are generated when not given: given ones render the same checksum every time."""
    values = {
        "secrets": {
            "apiToken": "a" * 40,
            "reloadToken": "b" * 40,
            "callbackSecret": "c" * 64,
            "webhookSecret": "d" * 64,
            "webhookEncryptionKey": "e" * 43 + "=",
        }
    }
    assert (
        checksums(render(values), "facade")["checksum/secrets"]
        == checksums(render({**values, "facade": {"replicas": 1}}), "facade")["checksum/secrets"]
    )


def test_object_store_pods_do_not_roll_when_only_a_token_changes(render) -> None:
    s3 = {"minio": {"auth": {"rootUser": "user", "rootPassword": "p" * 40}}}
    before = checksums(render({**s3, "secrets": {"apiToken": "a" * 40}}), "minio")
    after = checksums(render({**s3, "secrets": {"apiToken": "b" * 40}}), "minio")
    assert before == after and "checksum/secrets" not in before


@pytest.mark.parametrize("name", ["defaults", "kserve-on", "external-stores", "ingress-tls"])
def test_every_namespaced_object_names_the_release_namespace(render, name: str) -> None:
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Namespace"}
    for doc in render(VALUE_SETS[name]):
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] not in cluster_scoped:
            assert doc["metadata"].get("namespace") == "btc-forecast", where


def test_every_long_running_container_and_the_test_pod_have_probes(render) -> None:
    for doc in render({}):
        if doc["kind"] == "Job":
            continue  # runs to completion; the Job's backoffLimit and deadline bound it
        for c in containers_of(doc):
            where = f"{doc['kind']}/{doc['metadata']['name']}:{c['name']}"
            assert c.get("livenessProbe") and c.get("readinessProbe"), where


def test_pinned_images_pulled_always_need_no_skip(render) -> None:
    pinned = {"digest": DIGEST, "pullPolicy": "Always"}
    values = {c: {"image": pinned} for c in IMAGES} | {"facade": {"image": pinned, "reloadMode": "local"}}
    for component in ("minio", "mlflow", "predictor", "facade", "callback"):
        workload, _ = the_pods_of(render(values), component)
        assert "annotations" not in workload["metadata"], component
