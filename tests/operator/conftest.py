"""Fixtures for the operator tests: a Kubernetes API emulator, a client for it, the real operator.

``KUBECONFIG`` is written and exported here, at import, before anything in the test process imports
the ``kubernetes`` client (which reads the variable once, at import). The emulator serves the
session; each test works in its own namespace with its own operator process (``kopf run``), so
tests never see each other's objects.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

from btcforecast.devservers.process import free_port

_KUBE_DIR = Path(tempfile.mkdtemp(prefix="btcf-kube-"))
KUBE_PORT = free_port()
KUBECONFIG = _KUBE_DIR / "kubeconfig"
os.environ["KUBECONFIG"] = str(KUBECONFIG)

import pytest  # noqa: E402
from btcf_operator.kube import KubeApi  # noqa: E402

from btcforecast.devservers.process import ManagedProcess  # noqa: E402
from btcforecast.kube import api_client  # noqa: E402
from tests.operator.kube_emulator import EmulatorThread  # noqa: E402
from tests.operator.objects import FAST_OPERATOR_ENV  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "manifests" / "crd-modelaliases.yaml"


@pytest.fixture(scope="session")
def kube_emulator() -> Iterator[EmulatorThread]:
    emulator = EmulatorThread(KUBE_PORT, crd=CRD).start()
    emulator.write_kubeconfig(KUBECONFIG)
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
async def kube(kube_emulator: EmulatorThread) -> AsyncIterator[KubeApi]:
    api = KubeApi(api_client(str(KUBECONFIG)), timeout=5.0)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def namespace() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def start_operator(
    kube_emulator: EmulatorThread, namespace: str, tmp_path: Path
) -> Iterator[Callable[..., ManagedProcess]]:
    """Factory: start ``kopf run`` for this test's namespace against a given MLflow; stopped at teardown."""
    started: list[ManagedProcess] = []

    def start(tracking_uri: str, **env: str) -> ManagedProcess:
        port = free_port()
        kopf = Path(sys.executable).parent / "kopf"
        process = ManagedProcess(
            "operator",
            [
                str(kopf),
                "run",
                "--standalone",
                "--namespace",
                namespace,
                "-m",
                "btcf_operator.main",
                "--liveness",
                f"http://127.0.0.1:{port}/healthz",
                "--verbose",
            ],
            log_path=tmp_path / f"operator-{len(started)}.log",
            env={
                "KUBECONFIG": str(KUBECONFIG),
                "MLFLOW_TRACKING_URI": tracking_uri,
                **FAST_OPERATOR_ENV,
                **env,
            },
            ready_url=f"http://127.0.0.1:{port}/healthz",
            ready_timeout=60,
        )
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()
