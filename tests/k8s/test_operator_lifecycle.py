"""The operator on the real API server: Rollout on real Deployments and ReplicaSets, under the chart's RBAC.

The operator runs as ``kopf run`` with only its ServiceAccount's token; MLflow is a real server; the
Deployment and ReplicaSet controllers are the real ones; the node simulator plays the kubelet, so
pods become Ready, never Ready, or crash-loop as each test decides by the version they carry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from btcf_operator.kube import KubeApi
from kubernetes import client

from btcforecast import registry
from btcforecast.devservers.process import ManagedProcess
from btcforecast.kube import NotFound
from tests.fixtures.registry import RegisteredModel
from tests.k8s.nodesim import Behaviour, NodeSimulator, always_ready
from tests.operator import objects as o
from tests.operator.cluster import PhaseRecorder

pytest_plugins = ["tests.fixtures.kube", "tests.operator.cluster_fixtures"]
pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

WAIT = 180.0
"""Generous bound for anything the controllers and the operator do (no timed assertions)."""
DEADLINE = 10
"""rolloutDeadlineSeconds for the tests that expect a rollback (the CRD's minimum)."""
POLL = 5
"""pollSeconds (the CRD's minimum)."""


@pytest.fixture(scope="module")
def model(register_models: Callable[..., RegisteredModel]) -> RegisteredModel:
    """A model of its own; tests that move its aliases register another."""
    return register_models()


def pod_version(pod: dict[str, Any]) -> str | None:
    env = pod["spec"]["containers"][0].get("env") or []
    return next((e.get("value") for e in env if e["name"] == "MODEL_VERSION"), None)


def failing(version: str, how: Behaviour) -> Callable[[dict[str, Any]], Behaviour]:
    """Node behaviour: pods of ``version`` behave ``how``, every other pod becomes Ready."""
    return lambda pod: how if pod_version(pod) == version else "ready"


async def create_modelalias(
    admin: KubeApi,
    namespace: str,
    name: str,
    model: str,
    alias: str,
    *,
    poll_seconds: int = POLL,
    **spec: Any,
) -> dict[str, Any]:
    return await o.create(
        admin, namespace, "modelaliases", o.model_alias(name, model, alias, poll_seconds=poll_seconds, **spec)
    )


async def settled(admin: KubeApi, namespace: str, name: str = "predictor") -> dict[str, Any]:
    """The Deployment once its controller has rolled the current template out to every replica."""

    def done(dep: dict[str, Any]) -> bool:
        status, wanted = dep.get("status") or {}, dep["spec"]["replicas"]
        return (
            status.get("observedGeneration") == dep["metadata"]["generation"]
            and status.get("replicas") == status.get("updatedReplicas") == wanted
            and status.get("availableReplicas") == wanted
        )

    return await o.wait_for(
        lambda: o.get(admin, namespace, "deployments", name), done, timeout=WAIT, what=f"{name} rolled out"
    )


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


async def ready_pods(admin: KubeApi, namespace: str, app: str = "predictor") -> list[dict[str, Any]]:
    pods = await admin.list_pods(namespace, {"app": app})
    return [p for p in pods if is_ready(p) and not p["metadata"].get("deletionTimestamp")]


def template_version(dep: dict[str, Any]) -> str | None:
    return pod_version({"spec": dep["spec"]["template"]["spec"]})


async def wait_phase(admin: KubeApi, namespace: str, name: str, phase: str) -> dict[str, Any]:
    return await o.wait_status(
        admin, namespace, name, lambda s: s.get("phase") == phase, timeout=WAIT, what=phase
    )


async def ready_alias(
    admin: KubeApi,
    namespace: str,
    start_operator: Callable[..., ManagedProcess],
    model: RegisteredModel,
    alias: str,
    *,
    deployment: dict[str, Any] | None = None,
    operator_env: Mapping[str, str] | None = None,
    **spec: Any,
) -> tuple[ManagedProcess, dict[str, Any]]:
    """The usual start: a predictor Deployment, the operator, ModelAlias ``ma`` on ``alias``, Ready.

    ``operator_env`` is added to the operator's environment; ``spec`` (``poll_seconds``, ``deadline``, ...)
    goes to the ModelAlias.
    """
    await o.create(admin, namespace, "deployments", deployment or o.deployment("predictor"))
    operator = start_operator(model.tracking_uri, **(operator_env or {}))
    await create_modelalias(admin, namespace, "ma", model.name, alias, **spec)
    return operator, await wait_phase(admin, namespace, "ma", "Ready")


async def move_alias(
    admin: KubeApi, namespace: str, model: RegisteredModel, alias: str, version: str
) -> dict[str, Any]:
    """Move ``alias`` to ``version`` in MLflow; the status of ModelAlias ``ma`` once it has resolved it."""
    registry.set_alias(registry.connect(model.tracking_uri), model.name, alias, version)
    return await o.wait_status(
        admin,
        namespace,
        "ma",
        lambda s: s.get("resolvedVersion") == version,
        timeout=WAIT,
        what=f"{alias} moved",
    )


async def pods_of(admin: KubeApi, namespace: str, version: str) -> None:
    """Wait until the Deployment controller has made pods of ``version``."""
    await o.wait_for(
        lambda: admin.list_pods(namespace, {"app": "predictor"}),
        lambda pods: any(pod_version(p) == version for p in pods),
        timeout=WAIT,
        what=f"pods of version {version}",
    )


async def test_a_new_modelalias_resolves_rolls_out_and_is_ready_on_real_replicasets(
    admin: KubeApi,
    kube_api: client.ApiClient,
    kube_namespace: str,
    node_simulator: NodeSimulator,
    start_operator: Callable[..., ManagedProcess],
    model: RegisteredModel,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ns = kube_namespace
    await o.create(admin, ns, "deployments", o.deployment("predictor"))
    await settled(admin, ns)
    start_operator(model.tracking_uri)
    wanted = model.version_of("production")

    with PhaseRecorder(kube_api, ns, "ma") as recorder:
        created = time.monotonic()
        await create_modelalias(admin, ns, "ma", model.name, "production")
        status = await wait_phase(admin, ns, "ma", "Ready")
        took = time.monotonic() - created

    assert recorder.phases == ["Resolving", "RollingOut", "Ready"]
    ma = await o.get(admin, ns, "modelaliases", "ma")
    assert status["resolvedVersion"] == wanted
    assert status["observedGeneration"] == ma["metadata"]["generation"]
    assert {o.condition(status, t)["status"] for t in ("Resolved", "RolledOut", "Ready")} == {"True"}
    assert o.condition(status, "RolledOut")["reason"] == "RolloutComplete"
    dep = await settled(admin, ns)
    assert template_version(dep) == wanted
    assert [pod_version(p) for p in await ready_pods(admin, ns)] == [wanted, wanted]
    reasons = [e.get("reason") for e in await o.events(admin, ns) if e["involvedObject"]["name"] == "ma"]
    assert sorted(reasons) == ["RollingOut", "RolloutComplete"]  # one of each, nothing repeated
    timeline = ", ".join(f"{phase} at {at:.1f} s" for at, phase in recorder.seen)
    with capsys.disabled():
        print(f"\n[figure] operator rollout, real controllers: created -> Ready {took:.1f} s ({timeline})")


async def test_an_alias_moved_in_mlflow_is_rolled_out_within_poll_seconds(
    admin: KubeApi,
    kube_namespace: str,
    node_simulator: NodeSimulator,
    start_operator: Callable[..., ManagedProcess],
    register_models: Callable[..., RegisteredModel],
) -> None:
    ns, model = kube_namespace, register_models()
    _, ready = await ready_alias(admin, ns, start_operator, model, "staging")
    first = ready["resolvedVersion"]

    moved = model.version_of("backtest_20250403")
    status = await move_alias(admin, ns, model, "staging", moved)

    assert (status["phase"], status["previousVersion"]) == ("Ready", first)
    assert template_version(await settled(admin, ns)) == moved


@pytest.mark.parametrize("how", ["never-ready", "crashloop"])
async def test_a_rollout_whose_pods_do_not_become_ready_is_rolled_back_after_the_deadline(
    admin: KubeApi,
    kube_namespace: str,
    node_simulator: NodeSimulator,
    start_operator: Callable[..., ManagedProcess],
    model: RegisteredModel,
    how: Behaviour,
) -> None:
    ns = kube_namespace
    good, bad = model.version_of("backtest_20250320"), model.version_of("backtest_20250327")
    node_simulator.behaviour = failing(bad, how)
    await ready_alias(admin, ns, start_operator, model, "backtest_20250320", deadline=DEADLINE)

    await admin.patch_modelalias_spec(ns, "ma", {"alias": "backtest_20250327"})
    await pods_of(admin, ns, bad)
    status = await wait_phase(admin, ns, "ma", "Failed")

    assert (status["resolvedVersion"], status["failedVersion"]) == (good, bad)
    assert o.condition(status, "RolledOut")["reason"] == "DeadlineExceeded"
    assert o.condition(status, "Ready")["status"] == "True"  # the previous version serves
    assert "rolled back to version" in status["message"]
    dep = await settled(admin, ns)
    assert template_version(dep) == good
    assert [pod_version(p) for p in await ready_pods(admin, ns)] == [good, good]
    warnings = [e for e in await o.events(admin, ns) if e.get("reason") == "DeadlineExceeded"]
    assert warnings and warnings[0]["type"] == "Warning"


async def test_a_deployment_past_its_progress_deadline_is_rolled_back_as_rollout_failed(
    admin: KubeApi,
    kube_namespace: str,
    node_simulator: NodeSimulator,
    start_operator: Callable[..., ManagedProcess],
    model: RegisteredModel,
) -> None:
    """The Deployment controller's own verdict (ProgressDeadlineExceeded) ends the rollout early."""
    ns = kube_namespace
    good, bad = model.version_of("backtest_20250320"), model.version_of("backtest_20250327")
    node_simulator.behaviour = failing(bad, "crashloop")
    dep = o.deployment("predictor")
    dep["spec"]["progressDeadlineSeconds"] = 5
    await ready_alias(admin, ns, start_operator, model, "backtest_20250320", deployment=dep, deadline=3600)

    await admin.patch_modelalias_spec(ns, "ma", {"alias": "backtest_20250327"})
    status = await wait_phase(admin, ns, "ma", "Failed")

    assert (status["resolvedVersion"], status["failedVersion"]) == (good, bad)
    assert o.condition(status, "RolledOut")["reason"] == "RolloutFailed"
    assert "progress deadline" in status["message"]
    assert template_version(await settled(admin, ns)) == good


async def test_an_operator_killed_mid_rollout_finishes_it_after_restart(
    admin: KubeApi,
    kube_namespace: str,
    node_simulator: NodeSimulator,
    start_operator: Callable[..., ManagedProcess],
    model: RegisteredModel,
) -> None:
    ns = kube_namespace
    old, new = model.version_of("backtest_20250320"), model.version_of("backtest_20250403")
    node_simulator.behaviour = failing(new, "never-ready")  # held back until the operator is gone
    operator, _ = await ready_alias(admin, ns, start_operator, model, "backtest_20250320")
    await admin.patch_modelalias_spec(ns, "ma", {"alias": "backtest_20250403"})
    await pods_of(admin, ns, new)
    operator.kill()

    # While no operator runs, the new pods start for real (replaced, as after a crash of theirs).
    node_simulator.behaviour = always_ready
    for pod in await admin.list_pods(ns, {"app": "predictor"}):
        if pod_version(pod) == new:
            await admin.request("DELETE", o.path(ns, "pods", pod["metadata"]["name"]))
    await settled(admin, ns)
    assert (await o.get(admin, ns, "modelaliases", "ma"))["status"]["phase"] == "RollingOut"
    operator.start()
    status = await wait_phase(admin, ns, "ma", "Ready")

    assert (status["resolvedVersion"], status["previousVersion"]) == (new, old)


async def test_an_operator_back_after_the_deadline_rolls_the_rollout_back(
    admin: KubeApi,
    kube_namespace: str,
    node_simulator: NodeSimulator,
    start_operator: Callable[..., ManagedProcess],
    model: RegisteredModel,
) -> None:
    ns = kube_namespace
    old, new = model.version_of("backtest_20250320"), model.version_of("backtest_20250403")
    node_simulator.behaviour = failing(new, "never-ready")
    operator, _ = await ready_alias(admin, ns, start_operator, model, "backtest_20250320", deadline=DEADLINE)
    await admin.patch_modelalias_spec(ns, "ma", {"alias": "backtest_20250403"})
    rolling = await wait_phase(admin, ns, "ma", "RollingOut")
    operator.kill()
    await asyncio.sleep(DEADLINE + 1)  # the deadline passes while no operator runs

    operator.start()
    status = await wait_phase(admin, ns, "ma", "Failed")

    assert status["failedVersion"] == rolling["targetVersion"] == new
    assert o.condition(status, "RolledOut")["reason"] == "DeadlineExceeded"
    assert template_version(await settled(admin, ns)) == old


async def test_two_modelaliases_roll_two_targets_each_to_its_own_alias(
    admin: KubeApi,
    kube_namespace: str,
    node_simulator: NodeSimulator,
    start_operator: Callable[..., ManagedProcess],
    model: RegisteredModel,
) -> None:
    ns = kube_namespace
    for name in ("predictor-a", "predictor-b"):
        await o.create(admin, ns, "deployments", o.deployment(name, replicas=1))
    start_operator(model.tracking_uri)
    await create_modelalias(admin, ns, "a", model.name, "backtest_20250327", target="predictor-a")
    await create_modelalias(admin, ns, "b", model.name, "backtest_20250403", target="predictor-b")

    a, b = await asyncio.gather(wait_phase(admin, ns, "a", "Ready"), wait_phase(admin, ns, "b", "Ready"))

    assert (a["resolvedVersion"], b["resolvedVersion"]) == (
        model.version_of("backtest_20250327"),
        model.version_of("backtest_20250403"),
    )
    assert template_version(await settled(admin, ns, "predictor-a")) == a["resolvedVersion"]
    assert template_version(await settled(admin, ns, "predictor-b")) == b["resolvedVersion"]


async def test_a_modelalias_carries_no_finalizer_and_goes_at_once_without_the_operator(
    admin: KubeApi,
    kube_namespace: str,
    node_simulator: NodeSimulator,
    start_operator: Callable[..., ManagedProcess],
    model: RegisteredModel,
) -> None:
    """What ``helm uninstall`` does: the operator and its ModelAlias go together, nothing stays stuck."""
    ns = kube_namespace
    operator, _ = await ready_alias(admin, ns, start_operator, model, "production")
    assert not (await o.get(admin, ns, "modelaliases", "ma"))["metadata"].get("finalizers")

    operator.kill()
    await admin.request("DELETE", o.path(ns, "modelaliases", "ma"))

    with pytest.raises(NotFound):  # not Terminating, waiting for a finalizer nobody will remove
        await o.get(admin, ns, "modelaliases", "ma")
