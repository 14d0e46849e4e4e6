"""The ModelAlias CRD's openAPIV3Schema accepts the samples and refuses bad specs.

The API server validates custom resources with the CRD's structural schema; here the same schema is
turned into JSON Schema (dropping the x-kubernetes-* extensions, which only steer pruning and list
merging) and checked with jsonschema, so a bad spec is known to be refused before any operator sees it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
SAMPLES = ["sample-production-rollout.yaml", "sample-backtest-hotreload.yaml"]


def to_json_schema(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if isinstance(node, list):
        return [to_json_schema(v) for v in node]
    return node


def crd() -> dict[str, Any]:
    return yaml.safe_load((MANIFESTS / "crd-modelaliases.yaml").read_text())


def validator() -> jsonschema.Draft7Validator:
    [version] = crd()["spec"]["versions"]
    schema = to_json_schema(version["schema"]["openAPIV3Schema"])
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def sample(name: str = "sample-production-rollout.yaml") -> dict[str, Any]:
    return yaml.safe_load((MANIFESTS / name).read_text())


def with_spec(**changes: Any) -> dict[str, Any]:
    obj = copy.deepcopy(sample())
    for key, value in changes.items():
        if value is ...:
            obj["spec"].pop(key)
        else:
            obj["spec"][key] = value
    return obj


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_validates_against_the_crd_schema(name: str) -> None:
    validator().validate(sample(name))


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_is_a_modelalias_of_the_crd_group_and_version(name: str) -> None:
    doc, definition = sample(name), crd()
    assert doc["apiVersion"] == f"{definition['spec']['group']}/v1alpha1"
    assert doc["kind"] == definition["spec"]["names"]["kind"]


def test_a_status_written_by_the_operator_validates() -> None:
    obj = sample()
    obj["status"] = {
        "phase": "Ready",
        "resolvedVersion": "7",
        "previousVersion": "6",
        "observedGeneration": 3,
        "message": "rolled out",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "RolledOut",
                "message": "",
                "lastTransitionTime": "2025-06-26T00:00:00Z",
            },
        ],
        "kopf": {"progress": {}},  # kopf's own bookkeeping is preserved
    }
    validator().validate(obj)


BAD = {
    "missing-alias": with_spec(alias=...),
    "missing-target": with_spec(target=...),
    "missing-registered-model": with_spec(registeredModel=...),
    "unknown-strategy": with_spec(strategy="BlueGreen"),
    "poll-seconds-zero": with_spec(pollSeconds=0),
    "poll-seconds-over-a-day": with_spec(pollSeconds=86401),
    "poll-seconds-string": with_spec(pollSeconds="60"),
    "alias-300-chars": with_spec(alias="a" * 300),
    "alias-path-like": with_spec(alias="../production"),
    "alias-starting-with-digit": with_spec(alias="20250326"),
    "bad-target-kind": with_spec(target={"kind": "StatefulSet", "name": "btc-lstm"}),
    "target-without-name": with_spec(target={"kind": "Deployment"}),
    "target-name-not-dns": with_spec(target={"kind": "Deployment", "name": "Btc_LSTM"}),
    "rollout-deadline-too-short": with_spec(rolloutDeadlineSeconds=5),
    "reload-secret-without-key": with_spec(reloadTokenSecret={"name": "btc-forecast-secrets"}),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_modelalias_is_refused_by_the_schema(name: str) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validator().validate(BAD[name])


def test_a_failed_status_names_the_failed_version_as_a_declared_string() -> None:
    obj = sample()
    obj["status"] = {"phase": "Failed", "resolvedVersion": "6", "failedVersion": "7"}
    validator().validate(obj)
    obj["status"]["failedVersion"] = 7
    with pytest.raises(jsonschema.ValidationError):
        validator().validate(obj)


def test_bad_status_phase_is_refused() -> None:
    obj = sample()
    obj["status"] = {"phase": "Done"}
    with pytest.raises(jsonschema.ValidationError):
        validator().validate(obj)


def test_printer_columns_show_alias_version_phase_age() -> None:
    [version] = crd()["spec"]["versions"]
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns == {
        "Alias": ".spec.alias",
        "Version": ".status.resolvedVersion",
        "Phase": ".status.phase",
        "Age": ".metadata.creationTimestamp",
    }


def test_crd_names_match_the_design_card() -> None:
    spec = crd()["spec"]
    assert spec["group"] == "serving.btcforecast.io"
    assert spec["names"]["plural"] == "modelaliases"
    assert spec["names"]["shortNames"] == ["ma"]
    assert spec["versions"][0]["subresources"] == {"status": {}}
