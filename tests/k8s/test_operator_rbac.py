"""The chart's RBAC on the real API server: the operator and the facade may do their job and no more.

The chart's ServiceAccounts, Roles and bindings are rendered for the test's namespace and applied
as Helm would; ``kubectl auth can-i`` then asks the API server, with a kubeconfig holding only each
ServiceAccount's token, what that account may do.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.operator.cluster import SECRET_NAME, can_i

pytest_plugins = ["tests.fixtures.kube", "tests.operator.cluster_fixtures"]
pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

MODELALIASES = "modelaliases.serving.btcforecast.io"
ISVCS = "inferenceservices.serving.kserve.io"
DEPLOYMENTS = "deployments.apps"
OTHER_NAMESPACES = ("default", "kube-system")


def denied(kubeconfig: Path, namespace: str | None, checks: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """The checks (verb, resource, extra flags...) the API server allows although it should not."""
    return [check for check in checks if can_i(kubeconfig, check[0], check[1], namespace, *check[2:])]


def allowed(kubeconfig: Path, namespace: str | None, checks: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """The checks the API server refuses although the component needs them."""
    return [check for check in checks if not can_i(kubeconfig, check[0], check[1], namespace, *check[2:])]


def test_the_operator_may_follow_modelaliases_move_targets_and_read_its_own_secret(
    operator_kubeconfig: Path, kube_namespace: str, crds: None
) -> None:
    needs = [
        ("get", MODELALIASES),
        ("list", MODELALIASES),
        ("watch", MODELALIASES),
        ("patch", MODELALIASES),  # kopf's bookkeeping annotations
        ("patch", MODELALIASES, "--subresource=status"),
        ("get", DEPLOYMENTS),
        ("patch", DEPLOYMENTS),
        ("get", ISVCS),
        ("patch", ISVCS),
        ("list", "pods"),
        ("watch", "pods"),
        ("create", "events"),
        ("get", f"secrets/{SECRET_NAME}"),
    ]
    assert allowed(operator_kubeconfig, kube_namespace, needs) == []
    crd_list = [("list", "customresourcedefinitions.apiextensions.k8s.io")]
    assert allowed(operator_kubeconfig, None, crd_list) == []


def test_the_operator_cannot_read_other_secrets_delete_deployments_or_create_pods(
    operator_kubeconfig: Path, kube_namespace: str, crds: None
) -> None:
    forbidden = [
        ("get", "secrets/another-secret"),
        ("list", "secrets"),
        ("watch", "secrets"),
        ("delete", DEPLOYMENTS),
        ("create", DEPLOYMENTS),
        ("update", DEPLOYMENTS),
        ("create", "pods"),
        ("delete", "pods"),
        ("create", "pods", "--subresource=exec"),
        ("delete", MODELALIASES),
        ("create", MODELALIASES),
        ("create", "rolebindings.rbac.authorization.k8s.io"),
    ]
    assert denied(operator_kubeconfig, kube_namespace, forbidden) == []


@pytest.mark.parametrize("other", OTHER_NAMESPACES)
def test_the_operator_cannot_touch_other_namespaces(
    operator_kubeconfig: Path, kube_namespace: str, crds: None, other: str
) -> None:
    forbidden = [
        ("get", MODELALIASES),
        ("list", MODELALIASES),
        ("patch", MODELALIASES, "--subresource=status"),
        ("get", DEPLOYMENTS),
        ("patch", DEPLOYMENTS),
        ("list", "pods"),
        ("get", f"secrets/{SECRET_NAME}"),
        ("create", "events"),
    ]
    assert denied(operator_kubeconfig, other, forbidden) == []


def test_the_facade_may_only_move_its_own_modelalias(
    facade_kubeconfig: Path, kube_namespace: str, crds: None
) -> None:
    own = f"{MODELALIASES}/btc-lstm-production"
    assert allowed(facade_kubeconfig, kube_namespace, [("get", own), ("patch", own), ("watch", own)]) == []
    forbidden = [
        ("patch", f"{MODELALIASES}/another-alias"),
        ("patch", own, "--subresource=status"),  # the status is the operator's word
        ("delete", own),
        ("create", MODELALIASES),
        ("get", DEPLOYMENTS),
        ("patch", DEPLOYMENTS),
        ("get", "secrets"),
        ("list", "pods"),
    ]
    assert denied(facade_kubeconfig, kube_namespace, forbidden) == []
    assert denied(facade_kubeconfig, "default", [("get", own), ("patch", own)]) == []
