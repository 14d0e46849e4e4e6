"""Fixtures for the operator and the facade on a real API server, under the chart's own RBAC.

The kube tests (tests/k8s/test_operator_*.py, test_facade_cluster*.py) load this module as a plugin
(``pytest_plugins``). The chart's ServiceAccounts, Roles and bindings are rendered for the test's
namespace and applied with the admin kubeconfig; the operator then runs as a ``kopf run`` process
and the facade's cluster reload as a client, each holding nothing but its ServiceAccount's token,
so what the API server allows them is exactly what the chart grants. Objects the tests create or
inspect go through an admin client (``admin``), as a user's kubectl would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from btcf_operator.kube import KubeApi

from btcforecast.devservers.process import ManagedProcess
from btcforecast.kube import api_client
from tests.operator.cluster import (
    CLUSTER_SCOPED,
    apply,
    chart_rbac,
    delete,
    install_crds,
    operator_process,
    service_account_name,
)
from tests.operator.objects import FAST_OPERATOR_ENV


@pytest.fixture
def crds(kube_cluster: Any) -> None:
    """The CRDs the operator works with, Established."""
    install_crds(kube_cluster.admin_kubeconfig)


@pytest.fixture
async def admin(kube_cluster: Any, crds: None) -> AsyncIterator[KubeApi]:
    """The cluster admin's client (what a user's kubectl does), with the operator tests' helpers."""
    api = KubeApi(api_client(str(kube_cluster.admin_kubeconfig)), timeout=20.0)
    try:
        yield api
    finally:
        api.close()


def _install_rbac(kube_cluster: Any, namespace: str, component: str) -> Iterator[Path]:
    docs = chart_rbac(namespace, component)
    apply(kube_cluster.admin_kubeconfig, docs, namespace)
    try:
        yield kube_cluster.kubeconfig_for_serviceaccount(namespace, service_account_name(docs))
    finally:
        delete(kube_cluster.admin_kubeconfig, [d for d in docs if d["kind"] in CLUSTER_SCOPED])


@pytest.fixture
def operator_kubeconfig(kube_cluster: Any, kube_namespace: str) -> Iterator[Path]:
    """A kubeconfig with only the token of the chart's operator ServiceAccount in ``kube_namespace``."""
    yield from _install_rbac(kube_cluster, kube_namespace, "operator")


@pytest.fixture
def facade_kubeconfig(kube_cluster: Any, kube_namespace: str) -> Iterator[Path]:
    """A kubeconfig with only the token of the chart's facade ServiceAccount in ``kube_namespace``."""
    yield from _install_rbac(kube_cluster, kube_namespace, "facade")


@pytest.fixture
def start_operator(
    operator_kubeconfig: Path, kube_namespace: str, tmp_path: Path
) -> Iterator[Callable[..., ManagedProcess]]:
    """Factory: ``kopf run`` for this namespace as the chart's operator ServiceAccount; stopped after."""
    started: list[ManagedProcess] = []

    def start(tracking_uri: str, **env: str) -> ManagedProcess:
        process = operator_process(
            operator_kubeconfig,
            kube_namespace,
            tracking_uri,
            tmp_path / f"operator-{len(started)}.log",
            {**FAST_OPERATOR_ENV, **env},
        )
        started.append(process)
        return process.start()

    try:
        yield start
    finally:
        for process in started:
            process.stop()
