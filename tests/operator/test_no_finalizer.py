"""The operator puts no finalizer on a ModelAlias: deleting it never waits for the operator.

``helm uninstall`` deletes the operator together with its ModelAliases; a finalizer that only the
(deleted) operator could remove would leave the resource stuck in Terminating.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from btcf_operator.kube import KubeApi

from btcforecast.kube import NotFound
from tests.fixtures.registry import RegisteredModel
from tests.operator import objects as o

pytestmark = pytest.mark.timeout(300)


async def test_a_followed_modelalias_carries_no_finalizer_and_is_deleted_with_the_operator_gone(
    kube: KubeApi, namespace: str, start_operator, register_models: Callable[..., RegisteredModel]
) -> None:
    model = register_models()
    await o.create(kube, namespace, "deployments", o.deployment("predictor"))
    operator = start_operator(model.tracking_uri)
    await o.create(kube, namespace, "modelaliases", o.model_alias("ma", model.name, "production"))
    await o.wait_pinned(kube, namespace, "deployments", "predictor", model.version_of("production"))
    await o.roll_deployment(kube, namespace, "predictor")
    await o.wait_status(kube, namespace, "ma", lambda s: s.get("phase") == "Ready", what="Ready")

    ma = await o.get(kube, namespace, "modelaliases", "ma")
    assert not ma["metadata"].get("finalizers")
    operator.kill()
    await kube.request("DELETE", o.path(namespace, "modelaliases", "ma"))
    with pytest.raises(NotFound):
        await o.get(kube, namespace, "modelaliases", "ma")
