"""The chart installed, upgraded and uninstalled as a user does it: Helm v4, through helm-python-sdk.

helm-python-sdk embeds Helm v4's Go SDK (no helm binary): `install` applies `crds/` first, then the
templates with server-side apply, honours the chart's `kubeVersion`, renders `lookup` and
`.Capabilities` against the live API server, runs hooks and keeps the release history in Secrets,
exactly as `helm install` does. The tests of the chart (tests/k8s/test_chart_*.py) and of the node
(tests/k8s/test_node_chart.py) install through these functions.

Helpers for what a user applies besides the chart (another CRD, a custom resource) use kubectl's
server-side apply, the way Helm v4 applies its own objects.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import helm_python
import yaml
from kubernetes import client

from tests.k8s.paths import REPO_ROOT, kubectl

CHART = REPO_ROOT / "charts" / "btc-forecast"
RELEASE = "btc-forecast"
CRDS = Path(__file__).resolve().parent / "crds"
INFERENCESERVICE_CRD = CRDS / "serving.kserve.io_inferenceservices.yaml"
TIMEOUT = 300  # seconds Helm may take for one action (hooks and --wait included)
FIELD_MANAGER = "btcf-tests"

helm_python.disable_logging()  # the chart loader logs an INFO line for the crds/ symlink on every load


@contextmanager
def _config(kubeconfig: Path, namespace: str) -> Iterator[helm_python.Config]:
    with helm_python.Config(kubeconfig_path=kubeconfig, namespace=namespace) as config:
        yield config


def install(
    kubeconfig: Path,
    release: str,
    namespace: str,
    values: dict[str, Any] | None = None,
    *,
    wait: str | None = None,
    timeout: int = TIMEOUT,
    create_namespace: bool = False,
) -> dict[str, Any]:
    """`helm install RELEASE charts/btc-forecast -n NAMESPACE` (+ `--wait` when wait="watcher")."""
    with _config(kubeconfig, namespace) as config, helm_python.Chart.load(CHART) as chart:
        return config.install(
            chart,
            release,
            values or {},
            namespace=namespace,
            wait=wait,
            timeout=timeout,
            create_namespace=create_namespace,
        )


def upgrade(
    kubeconfig: Path,
    release: str,
    namespace: str,
    values: dict[str, Any] | None = None,
    *,
    wait: str | None = None,
    timeout: int = TIMEOUT,
    reuse_values: bool = False,
) -> dict[str, Any]:
    """`helm upgrade RELEASE charts/btc-forecast -n NAMESPACE`."""
    with _config(kubeconfig, namespace) as config, helm_python.Chart.load(CHART) as chart:
        return config.upgrade(
            chart,
            release,
            values or {},
            namespace=namespace,
            wait=wait,
            timeout=timeout,
            reuse_values=reuse_values,
        )


def uninstall(
    kubeconfig: Path, release: str, namespace: str, *, wait: str | None = None, timeout: int = TIMEOUT
) -> dict[str, Any]:
    """`helm uninstall RELEASE -n NAMESPACE`."""
    with _config(kubeconfig, namespace) as config:
        return config.uninstall(release, wait=wait, timeout=timeout)


def status(kubeconfig: Path, release: str, namespace: str) -> dict[str, Any]:
    """`helm status`: the release summary with its rendered manifest."""
    with _config(kubeconfig, namespace) as config:
        return config.status(release)


def releases(kubeconfig: Path, namespace: str) -> list[dict[str, Any]]:
    """`helm list --all` in the namespace."""
    with _config(kubeconfig, namespace) as config:
        return list(config.list(all_states=True))


def render(values: dict[str, Any] | None, release: str, namespace: str) -> list[dict[str, Any]]:
    """`helm template`: the chart's objects rendered offline (hooks included, crds/ and NOTES left out)."""
    with helm_python.Chart.load(CHART) as chart:
        files = chart.render(values=values or {}, name=release, namespace=namespace, is_install=True)
    return [
        doc for path, text in sorted(files.items()) if not path.endswith("NOTES.txt") for doc in objects(text)
    ]


def objects(manifest: str) -> list[dict[str, Any]]:
    """The objects of a rendered manifest (a release's `manifest`, or a YAML file's text)."""
    return [doc for doc in yaml.safe_load_all(manifest) if doc]


class KubectlFailed(subprocess.CalledProcessError):
    """kubectl exited non-zero; unlike CalledProcessError, its message carries kubectl's stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n{self.stderr}"


def kubectl_run(kubeconfig: Path, *args: str, input: str | None = None, timeout: float = 120) -> str:
    """kubectl (the venv's 1.37) against ``kubeconfig``; raises with its stderr when it fails."""
    done = subprocess.run(
        [str(kubectl()), "--kubeconfig", str(kubeconfig), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise KubectlFailed(done.returncode, done.args, done.stdout, done.stderr)
    return done.stdout


def apply_server_side(kubeconfig: Path, docs: Iterable[dict[str, Any]], namespace: str | None = None) -> str:
    """`kubectl apply --server-side` of ``docs``, as one list."""
    items = {"apiVersion": "v1", "kind": "List", "items": list(docs)}
    args = ["apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-"]
    if namespace:
        args += ["-n", namespace]
    return kubectl_run(kubeconfig, *args, input=json.dumps(items))


def crd_labels(kubeconfig: Path, name: str) -> dict[str, str] | None:
    """The labels of CRD ``name``, or None when the cluster has no such CRD."""
    done = subprocess.run(
        [str(kubectl()), "--kubeconfig", str(kubeconfig), "get", "crd", name, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        if "NotFound" in done.stderr:
            return None
        raise KubectlFailed(done.returncode, done.args, done.stdout, done.stderr)
    return json.loads(done.stdout)["metadata"].get("labels") or {}


def wait_established(kubeconfig: Path, crd: str, timeout: float = 120) -> None:
    """Poll until the CRD's Established condition is True.

    Not `kubectl wait`: right after the create, before the API server's establishing controller
    has written any condition, kubectl 1.37 fails with "status.conditions accessor error" instead of
    waiting (seen on a loaded machine).
    """
    deadline = time.monotonic() + timeout
    while True:
        found = json.loads(kubectl_run(kubeconfig, "get", f"crd/{crd}", "-o", "json"))
        conditions = (found.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"CRD {crd} not Established after {timeout:.0f} s: {conditions}")
        time.sleep(0.5)


def ensure_inferenceservice_crd(kubeconfig: Path) -> bool:
    """Install the tests' InferenceService CRD unless the cluster has one (e.g. a real KServe on
    kind, which is then what the tests run against). True when this call installed it."""
    crd = yaml.safe_load(INFERENCESERVICE_CRD.read_text())
    name = crd["metadata"]["name"]
    labels = crd_labels(kubeconfig, name)
    if labels is not None and labels.get("app.kubernetes.io/part-of") != "btc-forecast-tests":
        return False
    apply_server_side(kubeconfig, [crd])
    wait_established(kubeconfig, name)
    return labels is None


def delete_inferenceservice_crd(kubeconfig: Path) -> None:
    kubectl_run(kubeconfig, "delete", "-f", str(INFERENCESERVICE_CRD), "--ignore-not-found", "--wait=true")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120, interval: float = 0.5) -> Any:
    """Poll ``check()`` until it returns something truthy and return that; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = check()
        except Exception as e:  # a poll may race with the server; keep the last reason
            result, last = None, e
        if result:
            return result
        if result is not None:
            last = result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {last!r})")
        time.sleep(interval)


# -- the release on the API server ------------------------------------------------------------------
def live(kubeconfig: Path, namespace: str, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects as the API server stores them (`kubectl get -f` of their manifest)."""
    listing = json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})
    found = json.loads(
        kubectl_run(kubeconfig, "get", "-n", namespace, "-f", "-", "-o", "json", input=listing)
    )
    return found["items"] if found.get("kind") == "List" else [found]


def left_behind(kubeconfig: Path, release: str, namespace: str) -> set[str]:
    """kind/name of every object of the release still in the namespace or the cluster, with the
    release's own records (Helm's Secrets): every listable resource type, found by discovery."""
    names = kubectl_run(kubeconfig, "api-resources", "--verbs=list", "--namespaced", "-o", "name").split()
    kinds = ",".join(n for n in names if n not in {"events", "events.events.k8s.io"})
    selector = f"app.kubernetes.io/instance={release}"
    found = set(kubectl_run(kubeconfig, "get", kinds, "-n", namespace, "-l", selector, "-o", "name").split())
    cluster_wide = kubectl_run(
        kubeconfig, "get", "clusterroles,clusterrolebindings", "-l", selector, "-o", "name"
    )
    found |= {name for name in cluster_wide.split() if namespace in name}
    records = kubectl_run(
        kubeconfig, "get", "secrets", "-n", namespace, "-l", f"owner=helm,name={release}", "-o", "name"
    )
    return found | set(records.split())


# -- a namespace and a release for a group of tests -----------------------------------------------------
@contextmanager
def scratch_namespace(api: client.ApiClient, prefix: str) -> Iterator[str]:
    """A fresh namespace (labelled as tests/fixtures/kube.py labels its own), deleted afterwards."""
    core = client.CoreV1Api(api)
    name = f"t-{prefix}-{os.urandom(3).hex()}"[:63]
    core.create_namespace({"metadata": {"name": name, "labels": {"btcf.dev/test": "true"}}})
    try:
        wait_for(
            f"the default ServiceAccount of {name}",
            lambda: core.read_namespaced_service_account("default", name),
        )
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")


@contextmanager
def installed(
    kubeconfig: Path, namespace: str, values: dict[str, Any], **options: Any
) -> Iterator[list[dict[str, Any]]]:
    """The chart installed as RELEASE (yields the release's objects); uninstalled afterwards unless
    the test did it already."""
    release = install(kubeconfig, RELEASE, namespace, values, **options)
    try:
        yield objects(release["manifest"])
    finally:
        if releases(kubeconfig, namespace):
            uninstall(kubeconfig, RELEASE, namespace)


@contextmanager
def inferenceservice_crd(kubeconfig: Path) -> Iterator[bool]:
    """The tests' InferenceService CRD while the block runs; yields False when the cluster has
    KServe's own (left alone, and what the tests then meet)."""
    crd = yaml.safe_load(INFERENCESERVICE_CRD.read_text())
    labels = crd_labels(kubeconfig, crd["metadata"]["name"])
    ours = labels is None or labels.get("app.kubernetes.io/part-of") == "btc-forecast-tests"
    created = ensure_inferenceservice_crd(kubeconfig)
    try:
        yield ours
    finally:
        if created:
            delete_inferenceservice_crd(kubeconfig)
