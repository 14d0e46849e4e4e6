"""Hardening checked in what the chart and the plain manifests actually render."""

from __future__ import annotations

import pytest
import yaml
from chart_helpers import CHART, VALUE_SETS, containers_of, find, kustomized, pod_spec_of

ALLOWED_VERBS = {"get", "list", "watch", "patch", "update", "create"}


def assert_hardened(docs) -> None:
    for doc in docs:
        pod = pod_spec_of(doc)
        if pod is None:
            continue
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        psc = pod.get("securityContext", {})
        assert psc.get("runAsNonRoot") is True, where
        assert psc.get("runAsUser", 0) != 0, where
        assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        assert not pod.get("hostNetwork") and not pod.get("hostPID"), where
        for c in containers_of(doc):
            csc = c.get("securityContext", {})
            assert csc.get("readOnlyRootFilesystem") is True, f"{where}/{c['name']}"
            assert csc.get("allowPrivilegeEscalation") is False, f"{where}/{c['name']}"
            assert csc.get("privileged") is not True, f"{where}/{c['name']}"
            assert csc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}/{c['name']}"
            assert csc.get("runAsUser", 1) != 0, f"{where}/{c['name']}"
            assert "/tmp" in {m["mountPath"] for m in c.get("volumeMounts", [])}, f"{where}/{c['name']}"


def assert_least_privilege(docs) -> None:
    for doc in docs:
        if doc["kind"] not in {"Role", "ClusterRole"}:
            continue
        for rule in doc.get("rules", []):
            where = f"{doc['kind']}/{doc['metadata']['name']}: {rule}"
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), where
            assert set(rule["verbs"]) <= ALLOWED_VERBS, where
            if "secrets" in rule["resources"]:
                assert rule.get("resourceNames"), where
                assert set(rule["verbs"]) == {"get"}, where


def rule_set(docs, component: str = "operator") -> set[tuple]:
    return {
        (group, resource, verb, tuple(rule.get("resourceNames", [])) and "named")
        for doc in docs
        if doc["kind"] in {"Role", "ClusterRole"}
        and doc["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
        for rule in doc["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_every_chart_container_runs_non_root_with_read_only_root(render, name: str) -> None:
    assert_hardened(render(VALUE_SETS[name]))


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_chart_rbac_has_no_wildcards_and_no_extra_verbs(render, name: str) -> None:
    assert_least_privilege(render(VALUE_SETS[name]))


def test_manifests_operator_runs_non_root_with_read_only_root() -> None:
    assert_hardened(kustomized())


def test_manifests_rbac_has_no_wildcards_and_no_extra_verbs() -> None:
    assert_least_privilege(kustomized())


def test_chart_operator_rules_equal_the_manifests_rules(render) -> None:
    assert rule_set(render({})) == rule_set(kustomized())


def test_no_secret_value_is_hardcoded_in_the_manifests() -> None:
    for doc in kustomized():
        assert doc["kind"] != "Secret"


@pytest.mark.parametrize("name", ["defaults", "kserve-on", "local-reload"])
def test_pods_without_api_access_do_not_mount_a_token(render, name: str) -> None:
    """Only the operator and, in cluster reload mode, the facade (it patches the ModelAlias) call the API."""
    needs_api = {"operator"} | ({"facade"} if name != "local-reload" else set())
    for doc in render(VALUE_SETS[name]):
        pod = pod_spec_of(doc)
        if pod is None:
            continue
        component = doc["metadata"]["labels"]["app.kubernetes.io/component"]
        assert pod.get("automountServiceAccountToken") is (component in needs_api), doc["metadata"]["name"]


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_no_container_takes_a_secret_from_its_environment(render, name: str) -> None:
    """Secrets are files in a read-only volume: never in `env`, where every child process and crash
    dump sees them and `kubectl describe` names them."""
    for doc in render(VALUE_SETS[name]):
        for c in containers_of(doc):
            where = f"{doc['kind']}/{doc['metadata']['name']}:{c['name']}"
            assert not [e for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})], where
            assert not [e for e in c.get("envFrom", []) if "secretRef" in e], where


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_secret_files_are_mounted_read_only_and_readable_only_by_the_pods_group(render, name: str) -> None:
    for doc in render(VALUE_SETS[name]):
        pod = pod_spec_of(doc)
        if pod is None:
            continue
        for volume in pod.get("volumes", []):
            if volume["name"] == "secrets":
                assert volume["projected"]["defaultMode"] == 0o440, doc["metadata"]["name"]
        for c in containers_of(doc):
            for mount in c.get("volumeMounts", []):
                if mount["name"] == "secrets":
                    assert mount["readOnly"] is True, f"{doc['metadata']['name']}:{c['name']}"


def test_tokens_are_generated_not_written_in_values(render) -> None:
    with (CHART / "values.yaml").open() as f:
        values = yaml.safe_load(f)
    assert not any(values["secrets"][k] for k in ("apiToken", "reloadToken", "callbackSecret"))
    [secret] = [d for d in find(render({}), "Secret") if d["metadata"]["name"] == "btc-forecast-secrets"]
    assert all(len(v) >= 40 for v in secret["data"].values())


@pytest.mark.parametrize("name", ["defaults", "kserve-on"])
def test_read_only_containers_can_write_their_state_dir_and_tmp(render, name: str) -> None:
    """readOnlyRootFilesystem holds only if every place a component writes is a mounted volume."""
    for obj in render(VALUE_SETS[name]):
        for container in containers_of(obj):
            if not container.get("securityContext", {}).get("readOnlyRootFilesystem"):
                continue
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            where = f"{obj['kind']}/{obj['metadata']['name']}:{container['name']}"
            assert "/tmp" in mounts, f"{where} has no writable /tmp"
            if env.get("STATE_DIR"):
                assert env["STATE_DIR"] in mounts, f"{where} writes {env['STATE_DIR']} on a read-only root"
