"""The real operator (``kopf run``) against the emulator and a real MLflow: Rollout on a Deployment."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from btcf_operator.kube import KubeApi

from btcforecast import registry
from tests.fixtures.registry import RegisteredModel
from tests.operator import objects as o

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def model(register_models: Callable[..., RegisteredModel]) -> RegisteredModel:
    return register_models()


async def test_create_rolls_the_deployment_out_to_the_alias_version_and_reports_ready(
    kube: KubeApi, namespace: str, start_operator, model: RegisteredModel
) -> None:
    await o.create(kube, namespace, "deployments", o.deployment("predictor"))
    await o.roll_deployment(kube, namespace, "predictor")
    start_operator(model.tracking_uri)
    await o.create(kube, namespace, "modelaliases", o.model_alias("ma", model.name, "backtest_20250327"))
    wanted = model.version_of("backtest_20250327")

    dep = await o.wait_pinned(kube, namespace, "deployments", "predictor", wanted)  # by its annotation
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "MODEL_VERSION", "value": wanted} in container["env"]
    rolling = await o.get(kube, namespace, "modelaliases", "ma")
    assert (rolling["status"]["phase"], rolling["status"]["targetVersion"]) == ("RollingOut", wanted)

    await o.roll_deployment(kube, namespace, "predictor")
    status = await o.wait_status(kube, namespace, "ma", lambda s: s.get("phase") == "Ready", what="Ready")
    assert status["resolvedVersion"] == wanted
    assert status["observedGeneration"] == 1
    assert {o.condition(status, t)["status"] for t in ("Resolved", "RolledOut", "Ready")} == {"True"}


async def test_a_moved_alias_is_followed_within_poll_seconds(
    kube: KubeApi, namespace: str, start_operator, register_models: Callable[..., RegisteredModel]
) -> None:
    model = register_models()
    await o.create(kube, namespace, "deployments", o.deployment("predictor"))
    start_operator(model.tracking_uri)
    await o.create(kube, namespace, "modelaliases", o.model_alias("ma", model.name, "staging"))
    first = model.version_of("staging")
    await o.wait_pinned(kube, namespace, "deployments", "predictor", first)
    await o.roll_deployment(kube, namespace, "predictor")
    await o.wait_status(kube, namespace, "ma", lambda s: s.get("phase") == "Ready", what="Ready")

    moved = model.version_of("backtest_20250403")
    registry.set_alias(registry.connect(model.tracking_uri), model.name, "staging", moved)
    await o.wait_pinned(kube, namespace, "deployments", "predictor", moved)
    await o.roll_deployment(kube, namespace, "predictor")
    status = await o.wait_status(
        kube, namespace, "ma", lambda s: s.get("phase") == "Ready", what="Ready again"
    )

    assert (status["resolvedVersion"], status["previousVersion"]) == (moved, first)


async def test_a_rollout_that_never_becomes_available_is_rolled_back_failed_and_reported(
    kube: KubeApi, namespace: str, start_operator, model: RegisteredModel
) -> None:
    await o.create(kube, namespace, "deployments", o.deployment("predictor"))
    start_operator(model.tracking_uri)
    good, bad = model.version_of("backtest_20250320"), model.version_of("backtest_20250327")
    await o.create(
        kube, namespace, "modelaliases", o.model_alias("ma", model.name, "backtest_20250320", deadline=3)
    )
    await o.wait_pinned(kube, namespace, "deployments", "predictor", good)
    await o.roll_deployment(kube, namespace, "predictor")
    await o.wait_status(kube, namespace, "ma", lambda s: s.get("phase") == "Ready")

    await kube.patch_modelalias_spec(namespace, "ma", {"alias": "backtest_20250327"})
    await o.wait_pinned(kube, namespace, "deployments", "predictor", bad)
    await o.roll_deployment(kube, namespace, "predictor", available=False)
    status = await o.wait_status(kube, namespace, "ma", lambda s: s.get("phase") == "Failed", what="Failed")

    assert status["resolvedVersion"] == good
    assert status["failedVersion"] == bad
    assert o.condition(status, "RolledOut")["reason"] == "DeadlineExceeded"
    dep = await o.get(kube, namespace, "deployments", "predictor")
    assert {"name": "MODEL_VERSION", "value": good} in dep["spec"]["template"]["spec"]["containers"][0]["env"]
    reasons = {e.get("reason") for e in await o.events(kube, namespace)}
    assert "DeadlineExceeded" in reasons


async def test_an_operator_restarted_mid_rollout_finishes_it(
    kube: KubeApi, namespace: str, start_operator, model: RegisteredModel
) -> None:
    await o.create(kube, namespace, "deployments", o.deployment("predictor"))
    operator = start_operator(model.tracking_uri)
    await o.create(kube, namespace, "modelaliases", o.model_alias("ma", model.name, "backtest_20250403"))
    wanted = model.version_of("backtest_20250403")
    await o.wait_pinned(kube, namespace, "deployments", "predictor", wanted)  # status written, target patched
    operator.kill()

    await o.roll_deployment(kube, namespace, "predictor")
    operator.start()
    status = await o.wait_status(kube, namespace, "ma", lambda s: s.get("phase") == "Ready", what="Ready")

    assert status["resolvedVersion"] == wanted


async def test_an_operator_restarted_after_the_deadline_rolls_back(
    kube: KubeApi, namespace: str, start_operator, model: RegisteredModel
) -> None:
    await o.create(kube, namespace, "deployments", o.deployment("predictor"))
    operator = start_operator(model.tracking_uri)
    await o.create(
        kube, namespace, "modelaliases", o.model_alias("ma", model.name, "backtest_20250403", deadline=2)
    )
    await o.wait_status(kube, namespace, "ma", lambda s: s.get("phase") == "RollingOut")
    operator.kill()
    await asyncio.sleep(2.5)  # the deadline passes while no operator runs

    operator.start()
    status = await o.wait_status(kube, namespace, "ma", lambda s: s.get("phase") == "Failed", what="Failed")

    assert o.condition(status, "RolledOut")["reason"] == "DeadlineExceeded"
    dep = await o.get(kube, namespace, "deployments", "predictor")
    env = dep["spec"]["template"]["spec"]["containers"][0]["env"]
    assert all(item["name"] != "MODEL_VERSION" for item in env)  # back to what it was: unpinned
