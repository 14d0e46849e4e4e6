"""Helpers for the operator and the facade on a real API server, under the chart's own RBAC.

The chart's ServiceAccounts, Roles and bindings rendered for a test's namespace with the chart's
own templates, kubectl (apply as Helm v4 does, ``auth can-i``), the CRDs the operator works with,
and a recorder of the phases a ModelAlias goes through. The fixtures built on them are in
:mod:`tests.operator.cluster_fixtures`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, watch

from btcforecast.devservers.process import ManagedProcess, free_port
from btcforecast.modelalias import GROUP, PLURAL, VERSION
from tests.chart.chart_helpers import CHART, MANIFESTS, RELEASE, helm
from tests.k8s.helm import wait_established
from tests.k8s.paths import kubectl

ROOT = Path(__file__).resolve().parents[2]
MODELALIAS_CRD = MANIFESTS / "crd-modelaliases.yaml"
TEST_CRDS = ROOT / "tests" / "k8s" / "crds"
"""KServe's InferenceService CRD for tests (the chart's owners keep it)."""
RBAC_KINDS = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
CLUSTER_SCOPED = ("ClusterRole", "ClusterRoleBinding")
COMPONENT_LABEL = "app.kubernetes.io/component"
OPERATOR_READY_TIMEOUT = 90.0
SECRET_NAME = f"{RELEASE}-secrets"
"""The chart's own Secret: the one the operator's Role lets it read (reload token for HotReload)."""


# --- the operator ------------------------------------------------------------------------------


def operator_process(
    kubeconfig: Path, namespace: str, tracking_uri: str, log_path: Path, env: dict[str, str] | None = None
) -> ManagedProcess:
    """``kopf run`` of the operator for ``namespace`` with ``kubeconfig``'s credentials (not started)."""
    port = free_port()
    return ManagedProcess(
        "operator",
        [
            str(Path(sys.executable).parent / "kopf"),
            "run",
            "--standalone",
            f"--namespace={namespace}",
            f"--liveness=http://127.0.0.1:{port}/healthz",
            "--verbose",
            "-m",
            "btcf_operator.main",
        ],
        log_path=log_path,
        env={"KUBECONFIG": str(kubeconfig), "MLFLOW_TRACKING_URI": tracking_uri, **(env or {})},
        ready_url=f"http://127.0.0.1:{port}/healthz",
        ready_timeout=OPERATOR_READY_TIMEOUT,
    )


# --- the chart -------------------------------------------------------------------------------------


def render_chart(namespace: str, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The chart's templates rendered for a release in ``namespace`` (what ``helm install -n`` makes)."""
    with helm.Chart.load(CHART) as chart:
        files = chart.render(values=values or {}, name=RELEASE, namespace=namespace, is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(files.items()):
        if not path.endswith("NOTES.txt"):
            docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def chart_rbac(namespace: str, component: str, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The chart's ServiceAccount, (Cluster)Roles and bindings of one component, as rendered."""
    return [
        d
        for d in render_chart(namespace, values)
        if d["kind"] in RBAC_KINDS and d["metadata"].get("labels", {}).get(COMPONENT_LABEL) == component
    ]


def service_account_name(docs: Sequence[dict[str, Any]]) -> str:
    [account] = [d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"]
    return account


# --- kubectl -------------------------------------------------------------------------------------


def run_kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(kubectl()), "--kubeconfig", str(kubeconfig), "--request-timeout", "30s", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr or result.stdout}")
    return result


def apply(kubeconfig: Path, docs: Sequence[dict[str, Any]], namespace: str | None = None) -> None:
    """Server-side apply, as Helm v4 installs."""
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(docs)})
    where = ["-n", namespace] if namespace else []
    run_kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", *where, "-f", "-", stdin=body)


def delete(kubeconfig: Path, docs: Sequence[dict[str, Any]]) -> None:
    for doc in docs:
        kind, name = doc["kind"].lower(), doc["metadata"]["name"]
        run_kubectl(kubeconfig, "delete", kind, name, "--ignore-not-found", check=False)


def can_i(kubeconfig: Path, verb: str, resource: str, namespace: str | None, *extra: str) -> bool:
    """``kubectl auth can-i`` as the kubeconfig's user: yes (exit 0) or no (exit 1)."""
    where = ["-n", namespace] if namespace else []
    result = run_kubectl(kubeconfig, "auth", "can-i", verb, resource, *where, *extra, check=False)
    if result.returncode not in (0, 1):
        raise AssertionError(f"kubectl auth can-i {verb} {resource}: {result.stderr}")
    return result.returncode == 0


def install_crds(kubeconfig: Path) -> None:
    """The ModelAlias CRD (and KServe's InferenceService CRD for tests), applied and Established.

    Applied for every test that needs them: server-side apply of an unchanged CRD is a no-op, and
    a test elsewhere in the session that removed a CRD cannot break the ones after it.
    """
    docs = [yaml.safe_load(MODELALIAS_CRD.read_text())]
    for path in sorted(TEST_CRDS.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    apply(kubeconfig, docs)
    for doc in docs:
        wait_established(kubeconfig, doc["metadata"]["name"])


# --- watching a ModelAlias -----------------------------------------------------------------------


class PhaseRecorder:
    """Every phase a ModelAlias goes through, from a watch (nothing is missed between two polls).

    ``seen`` holds (seconds since start, phase) for each change of phase, in order. The watch is
    renewed every few seconds from the last version seen, so stop() returns promptly.
    """

    def __init__(self, api: client.ApiClient, namespace: str, name: str) -> None:
        self._custom = client.CustomObjectsApi(api)
        self.namespace, self.name = namespace, name
        self.seen: list[tuple[float, str]] = []
        self.errors: list[str] = []
        self._version = ""
        self._started = time.monotonic()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"phases {name}", daemon=True)

    def start(self) -> PhaseRecorder:
        """Watch from the collection's current version: every change after this call is seen."""
        listed = self._custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
        self._version = listed["metadata"]["resourceVersion"]
        self._started = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)

    @property
    def phases(self) -> list[str]:
        return [phase for _, phase in self.seen]

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._watch_once()
            except Exception as e:  # a connection cut: watch again from the last version seen
                if not self._stopping.is_set():
                    self.errors.append(repr(e))
                    self._stopping.wait(0.5)

    def _watch_once(self) -> None:
        stream = watch.Watch().stream(
            self._custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            field_selector=f"metadata.name={self.name}",
            resource_version=self._version,
            timeout_seconds=3,
        )
        for event in stream:
            body = event["object"] or {}
            self._version = (body.get("metadata") or {}).get("resourceVersion") or self._version
            phase = (body.get("status") or {}).get("phase")
            if phase and (not self.seen or self.seen[-1][1] != phase):
                self.seen.append((time.monotonic() - self._started, phase))
            if self._stopping.is_set():
                return

    def __enter__(self) -> PhaseRecorder:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
