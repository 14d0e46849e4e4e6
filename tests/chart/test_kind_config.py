"""kind-config.yaml is a kind Cluster with an ingress-ready control plane on host ports 80 and 443."""

from __future__ import annotations

import yaml
from chart_helpers import ROOT


def load() -> dict:
    return yaml.safe_load((ROOT / "kind-config.yaml").read_text())


def control_plane() -> dict:
    [node] = [n for n in load()["nodes"] if n["role"] == "control-plane"]
    return node


def test_kind_config_is_a_kind_cluster() -> None:
    cfg = load()
    assert cfg["kind"] == "Cluster"
    assert cfg["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert all(n["role"] in {"control-plane", "worker"} for n in cfg["nodes"])


def test_control_plane_is_labelled_ingress_ready() -> None:
    patches = [yaml.safe_load(p) for p in control_plane()["kubeadmConfigPatches"]]
    [init] = [p for p in patches if p["kind"] == "InitConfiguration"]
    assert "ingress-ready=true" in init["nodeRegistration"]["kubeletExtraArgs"]["node-labels"].split(",")


def test_control_plane_maps_ports_80_and_443_on_loopback() -> None:
    mappings = control_plane()["extraPortMappings"]
    assert {(m["containerPort"], m["hostPort"]) for m in mappings} == {(80, 80), (443, 443)}
    assert {m["listenAddress"] for m in mappings} == {"127.0.0.1"}
    assert {m.get("protocol", "TCP") for m in mappings} == {"TCP"}
