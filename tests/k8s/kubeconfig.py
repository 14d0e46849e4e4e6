"""Kubeconfig files for the tests: admin (client certificate) and ServiceAccount (token only).

A ServiceAccount's kubeconfig holds nothing but that account's token and the cluster's CA, so what
a component run with it may do is exactly what its RBAC grants. Tokens are read with kubectl through
an optional command prefix, so the same code works for a control plane inside a network namespace.
``ExternalCluster`` is a cluster the user already runs (``BTCF_TEST_KUBECONFIG``, e.g. kind), with the
same surface as the project's own ControlPlane.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.k8s.paths import kubectl

TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"


class KubectlError(RuntimeError):
    """kubectl exited non-zero; the message holds its stderr."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_data: bytes,
    user: str,
    client_cert: Path | None = None,
    client_key: Path | None = None,
    token: str | None = None,
    namespace: str | None = None,
    cluster: str = "btcf",
) -> Path:
    """A self-contained kubeconfig (certificates embedded) for one user on one cluster."""
    credentials: dict[str, str] = {}
    if client_cert is not None and client_key is not None:
        credentials["client-certificate-data"] = _b64(client_cert.read_bytes())
        credentials["client-key-data"] = _b64(client_key.read_bytes())
    if token is not None:
        credentials["token"] = token
    if not credentials:
        raise ValueError("a kubeconfig needs a client certificate and key, or a token")
    context: dict[str, str] = {"cluster": cluster, "user": user}
    if namespace:
        context["namespace"] = namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": cluster, "cluster": {"server": server, "certificate-authority-data": _b64(ca_data)}}
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": f"{user}@{cluster}", "context": context}],
        "current-context": f"{user}@{cluster}",
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


def with_server(source: Path, target: Path, server: str) -> Path:
    """A copy of kubeconfig ``source`` whose clusters point at ``server`` (e.g. a bridged port)."""
    config = yaml.safe_load(source.read_text())
    for entry in config.get("clusters", []):
        entry["cluster"]["server"] = server
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    target.chmod(0o600)
    return target


def current_cluster(path: Path) -> dict[str, Any]:
    """The ``cluster`` entry (server, CA ...) of the kubeconfig's current context."""
    config = yaml.safe_load(Path(path).read_text())
    contexts = {c["name"]: c["context"] for c in config.get("contexts", [])}
    clusters = {c["name"]: c["cluster"] for c in config.get("clusters", [])}
    return dict(clusters[contexts[config["current-context"]]["cluster"]])


def run_kubectl(base: Sequence[str], *args: str, stdin: str | None = None, timeout: float = 60) -> str:
    """Run ``base + args`` (base: prefix, kubectl and its --kubeconfig); stdout, or KubectlError."""
    result = subprocess.run(
        [*base, *args], input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise KubectlError(f"kubectl {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def kubectl_command(kubeconfig: Path, prefix: Sequence[str] = ()) -> list[str]:
    """argv prefix that runs the venv's kubectl with ``kubeconfig`` (inside ``prefix``, if any)."""
    return [*prefix, str(kubectl()), "--kubeconfig", str(kubeconfig), "--request-timeout", "20s"]


def service_account_token(
    base: Sequence[str],
    namespace: str,
    name: str,
    *,
    create_secret: bool = False,
    timeout: float = 90,
) -> tuple[str, bytes]:
    """Wait for ServiceAccount ``namespace/name``'s token Secret; return its token and ca.crt.

    Kubernetes before 1.24 creates the Secret itself (the token controller); with ``create_secret``
    a Secret of that type is created explicitly, which every version fills in (needed from 1.24 on).
    """
    deadline = time.monotonic() + timeout
    created = False
    last = "the ServiceAccount does not exist"
    while True:
        try:
            account = json.loads(
                run_kubectl(base, "get", "-n", namespace, "serviceaccount", name, "-o", "json")
            )
            uid = account["metadata"]["uid"]
            if create_secret and not created:
                _create_token_secret(base, namespace, name, uid)
                created = True
            secrets = json.loads(run_kubectl(base, "get", "-n", namespace, "secrets", "-o", "json"))["items"]
            for secret in secrets:
                annotations = secret["metadata"].get("annotations") or {}
                data = secret.get("data") or {}
                if (
                    secret.get("type") == TOKEN_SECRET_TYPE
                    and annotations.get(SA_NAME_ANNOTATION) == name
                    and annotations.get(SA_UID_ANNOTATION) == uid
                    and data.get("token")
                ):
                    return base64.b64decode(data["token"]).decode(), base64.b64decode(data.get("ca.crt", ""))
            last = "no token Secret yet"
        except KubectlError as e:
            last = str(e)
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"no token for ServiceAccount {namespace}/{name} after {timeout:.0f} s: {last}"
            )
        time.sleep(0.5)


def _create_token_secret(base: Sequence[str], namespace: str, name: str, uid: str) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": TOKEN_SECRET_TYPE,
        "metadata": {
            "name": f"{name}-btcf-token",
            "namespace": namespace,
            "annotations": {SA_NAME_ANNOTATION: name, SA_UID_ANNOTATION: uid},
        },
    }
    try:
        run_kubectl(base, "create", "-f", "-", stdin=json.dumps(secret))
    except KubectlError as e:
        if "AlreadyExists" not in str(e) and "already exists" not in str(e):
            raise


class ExternalCluster:
    """A cluster the user runs (kind, ...), given by an admin kubeconfig; the tests start nothing.

    Same surface as ControlPlane for the fixtures: ``server``, ``admin_kubeconfig``,
    ``kubeconfig_for_serviceaccount``. Files it writes go to ``workdir``.
    """

    def __init__(self, admin_kubeconfig: Path, workdir: Path) -> None:
        self.admin_kubeconfig = Path(admin_kubeconfig)
        self.workdir = Path(workdir)
        cluster = current_cluster(self.admin_kubeconfig)
        self.server: str = cluster["server"]
        ca = cluster.get("certificate-authority-data")
        if ca is not None:
            self.ca_data = base64.b64decode(ca)
        elif cluster.get("certificate-authority"):
            self.ca_data = Path(cluster["certificate-authority"]).read_bytes()
        else:
            self.ca_data = b""

    def kubeconfig_for_serviceaccount(self, namespace: str, name: str, *, server: str | None = None) -> Path:
        token, ca = service_account_token(
            kubectl_command(self.admin_kubeconfig), namespace, name, create_secret=True
        )
        return write_kubeconfig(
            self.workdir / "kubeconfigs" / f"sa-{namespace}-{name}.yaml",
            server=server or self.server,
            ca_data=self.ca_data or ca,
            user=f"system:serviceaccount:{namespace}:{name}",
            token=token,
            namespace=namespace,
        )

    def stop(self) -> None:
        """Nothing to stop: the cluster belongs to the user."""
