"""One reconciliation step as a plain function: ``reconcile`` against the API emulator, no kopf.

The step runs in the test's own event loop with a resolver that answers from a dict, a clock the
test moves, and ``httpx.MockTransport`` for the predictors' reload endpoints and the facade's
``/evaluation``; the Kubernetes objects live in the emulator (``tests/operator/kube_emulator.py``),
so every patch the step sends is applied as the API server would. The tests play the controllers
(``roll_deployment``, ``play_kserve``) between steps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from btcf_operator.kube import KubeApi
from btcf_operator.reconcile import reconcile
from btcf_operator.settings import OperatorSettings
from btcf_operator.spec import SpecError, Strategy, parse_spec
from btcf_operator.step import Context, InvalidTarget, ObjectState, RetryLater
from btcf_operator.strategies import HotReload, Rollout, strategy_for
from btcf_operator.timing import format_time

from btcforecast.registry import AliasNotFoundError, RegistryUnavailable
from tests.operator import objects as o

FACADE = "http://facade.test"
START = datetime(2025, 8, 1, 6, 0, tzinfo=UTC)


@dataclass
class Registry:
    """alias -> version, as MLflow would answer; ``down`` makes every call fail."""

    aliases: dict[str, str] = field(default_factory=dict)
    down: bool = False
    calls: int = 0

    async def resolve(self, model: str, alias: str) -> str:
        self.calls += 1
        if self.down:
            raise RegistryUnavailable("connection refused")
        if alias not in self.aliases:
            raise AliasNotFoundError(f"model {model!r} has no alias {alias!r}")
        return self.aliases[alias]


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Outside:
    """What the step reaches over HTTP: the predictor pods and the facade."""

    served: dict[str, str] = field(default_factory=dict)
    """pod address -> version it serves after a reload."""
    broken: set[str] = field(default_factory=set)
    """pod addresses that answer every reload with 500."""
    evaluation: dict[str, Any] | None = None

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/evaluation" and self.evaluation is not None:
            return httpx.Response(200, json=self.evaluation)
        if request.url.path.endswith("/reload"):
            address = f"{request.url.host}:{request.url.port}"
            if address in self.broken:
                return httpx.Response(500, text="load failed")
            self.served[address] = request.url.params["version"]
            return httpx.Response(200, json={"model_version": request.url.params["version"]})
        return httpx.Response(404, json={"detail": "not here"})


@dataclass
class Harness:
    ctx: Context
    kube: KubeApi
    namespace: str
    registry: Registry
    clock: Clock
    outside: Outside
    events: list[tuple[str, str, str]]
    state: ObjectState = field(default_factory=ObjectState)

    async def step(self, *, force: bool = True) -> bool:
        return await reconcile(self.ctx, self.namespace, "ma", self.state, force=force)

    async def status(self) -> dict[str, Any]:
        return (await o.get(self.kube, self.namespace, "modelaliases", "ma")).get("status") or {}

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.events]


@pytest.fixture
async def harness(kube: KubeApi, namespace: str) -> AsyncIterator[Harness]:
    settings = OperatorSettings(
        retry_initial_seconds=1,
        retry_max_seconds=4,
        hotreload_retries=1,
        hotreload_retry_delay=0,
        facade_url=FACADE,
    )
    registry, clock, outside = Registry(), Clock(), Outside()
    events: list[tuple[str, str, str]] = []
    http = httpx.AsyncClient(transport=httpx.MockTransport(outside.handle))

    def post_event(body: Any, type_: str, reason: str, message: str) -> None:
        events.append((type_, str(reason), message))

    ctx = Context(
        settings=settings, kube=kube, resolver=registry, http=http, post_event=post_event, clock=clock
    )
    try:
        yield Harness(ctx, kube, namespace, registry, clock, outside, events)
    finally:
        await http.aclose()


async def given(h: Harness, target: dict[str, Any], **alias: Any) -> None:
    """The target and a ModelAlias ``ma`` following ``production`` onto it."""
    plural = "deployments" if target["kind"] == "Deployment" else "inferenceservices"
    await o.create(h.kube, h.namespace, plural, target)
    kind = target["kind"]
    ma = o.model_alias("ma", "btc-lstm", "production", kind=kind, target=target["metadata"]["name"], **alias)
    await o.create(h.kube, h.namespace, "modelaliases", ma)


async def deployment(h: Harness) -> dict[str, Any]:
    return await o.get(h.kube, h.namespace, "deployments", "predictor")


async def generation(h: Harness) -> int:
    """The Deployment's generation: it moves only when a step patches the template."""
    return (await deployment(h))["metadata"]["generation"]


async def serving(h: Harness, version: str, **alias: Any) -> None:
    """``production`` at ``version`` in MLflow, rolled out on the Deployment and Ready."""
    h.registry.aliases["production"] = version
    await given(h, o.deployment("predictor"), **alias)
    await h.step()
    await o.roll_deployment(h.kube, h.namespace, "predictor")
    await h.step(force=False)


def rolled_out(status: dict[str, Any]) -> tuple[str, str]:
    """The phase and the reason of the ``RolledOut`` condition."""
    return status["phase"], o.condition(status, "RolledOut")["reason"]


async def retry_delays(h: Harness, error: type[RetryLater | InvalidTarget]) -> list[float]:
    """Two steps that each end in ``error``: the delays they ask for."""
    delays = []
    for _ in range(2):
        with pytest.raises(error) as failed:
            await h.step()
        delays.append(failed.value.delay)
    return delays


# --- Rollout --------------------------------------------------------------------------------------


async def test_a_new_alias_records_the_rollout_then_pins_the_target(harness: Harness) -> None:
    h = harness
    h.registry.aliases["production"] = "3"
    await given(h, o.deployment("predictor"))

    assert await h.step()

    status = await h.status()
    assert (status["phase"], status["targetVersion"], status.get("previousVersion")) == (
        "RollingOut",
        "3",
        None,
    )
    assert status["message"] == "rolling out version 3: waiting for the controller to see generation 2"
    assert o.pinned_version(await deployment(h)) == "3"
    assert h.events == [("Normal", "RollingOut", "production: version none -> 3")]


async def test_a_rollout_the_controller_finished_is_ready(harness: Harness) -> None:
    h = harness
    h.registry.aliases["production"] = "3"
    await given(h, o.deployment("predictor"))
    await h.step()
    await o.roll_deployment(h.kube, h.namespace, "predictor")

    await h.step(force=False)

    status = await h.status()
    assert (status["phase"], status["resolvedVersion"], status.get("targetVersion")) == ("Ready", "3", None)
    assert {o.condition(status, t)["status"] for t in ("Resolved", "RolledOut", "Ready")} == {"True"}
    assert h.reasons()[-1] == "RolloutComplete"


async def test_a_rollout_past_its_deadline_is_rolled_back_and_failed(harness: Harness) -> None:
    h = harness
    h.registry.aliases["production"] = "3"
    await given(h, o.deployment("predictor"), deadline=60)
    await h.step()
    await o.roll_deployment(h.kube, h.namespace, "predictor", available=False)
    h.clock.now += timedelta(seconds=61)

    await h.step(force=False)

    status = await h.status()
    assert (status["phase"], status["failedVersion"], status.get("resolvedVersion")) == ("Failed", "3", None)
    assert o.condition(status, "RolledOut")["reason"] == "DeadlineExceeded"
    assert o.pinned_version(await deployment(h)) is None  # back to unpinned
    assert h.events[-1][:2] == ("Warning", "DeadlineExceeded")


async def test_a_deployment_past_its_progress_deadline_is_rolled_back_at_once(harness: Harness) -> None:
    h = harness
    h.registry.aliases["production"] = "3"
    await given(h, o.deployment("predictor"))
    await h.step()
    dep = await deployment(h)
    stalled = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "x"}
    status = {"observedGeneration": dep["metadata"]["generation"], "conditions": [stalled]}
    await o.patch_status(h.kube, h.namespace, "deployments", "predictor", status)

    await h.step(force=False)

    status = await h.status()
    assert rolled_out(status) == ("Failed", "RolloutFailed")
    assert o.pinned_version(await deployment(h)) is None


async def test_a_failed_version_is_not_retried_for_the_same_spec(harness: Harness) -> None:
    h = harness
    h.registry.aliases["production"] = "3"
    await given(h, o.deployment("predictor"), deadline=60)
    await h.step()
    h.clock.now += timedelta(seconds=61)
    await h.step(force=False)
    generation_before = await generation(h)

    await h.step()

    assert (await h.status())["phase"] == "Failed"
    assert await generation(h) == generation_before  # not patched again


async def test_an_alias_already_served_is_ready_without_touching_the_target(harness: Harness) -> None:
    h = harness
    await serving(h, "3")
    before, generation_before = await h.status(), await generation(h)

    await h.step()

    assert await h.status() == before
    assert await generation(h) == generation_before


# --- the alias and the target missing, the target invalid -----------------------------------------


async def test_a_missing_alias_fails_posts_once_and_backs_off(harness: Harness) -> None:
    h = harness
    await given(h, o.deployment("predictor"))

    delays = await retry_delays(h, RetryLater)

    status = await h.status()
    assert (status["phase"], o.condition(status, "Resolved")["reason"]) == ("Failed", "AliasNotFound")
    assert delays == [1, 2]
    assert h.reasons() == ["AliasNotFound"]


async def test_an_unreachable_registry_keeps_the_phase_and_retries(harness: Harness) -> None:
    h = harness
    await serving(h, "3")
    h.registry.down = True

    with pytest.raises(RetryLater):
        await h.step()

    status = await h.status()
    assert (status["phase"], status["resolvedVersion"]) == ("Ready", "3")
    resolved = o.condition(status, "Resolved")
    assert (resolved["status"], resolved["reason"]) == ("Unknown", "RegistryUnavailable")


async def test_a_missing_target_fails_target_not_found_and_retries(harness: Harness) -> None:
    h = harness
    h.registry.aliases["production"] = "3"
    await o.create(h.kube, h.namespace, "modelaliases", o.model_alias("ma", "btc-lstm", "production"))

    with pytest.raises(RetryLater, match="not found"):
        await h.step()

    status = await h.status()
    assert rolled_out(status) == ("Failed", "TargetNotFound")


async def test_an_inference_service_without_containers_is_an_invalid_target_until_fixed(
    harness: Harness,
) -> None:
    h = harness
    h.registry.aliases["production"] = "3"
    await given(h, o.inference_service("btc", custom_predictor=False))

    delays = await retry_delays(h, InvalidTarget)

    status = await h.status()
    assert rolled_out(status) == ("Failed", "InvalidTarget")
    assert "spec.predictor.model" in status["message"] and "targetVersion" not in status
    assert delays == [1, 2]
    assert h.reasons() == ["InvalidTarget"]
    assert (await o.get(h.kube, h.namespace, "inferenceservices", "btc"))["metadata"]["generation"] == 1

    fixed = [{"op": "replace", "path": "/spec", "value": o.inference_service("btc")["spec"]}]
    await h.kube.json_patch_target("InferenceService", h.namespace, "btc", fixed)
    await h.step()
    await o.play_kserve(h.kube, h.namespace, "btc")
    await h.step(force=False)

    status = await h.status()
    assert (status["phase"], status["resolvedVersion"]) == ("Ready", "3")
    assert h.state.failures == 0


async def test_a_spec_the_operator_cannot_read_is_a_spec_error(harness: Harness) -> None:
    h = harness
    ma = o.model_alias("ma", "btc-lstm", "production", kind="StatefulSet")
    await o.create(h.kube, h.namespace, "modelaliases", ma)

    with pytest.raises(SpecError):
        await h.step()


async def test_a_deleted_resource_is_a_step_with_nothing_done(harness: Harness) -> None:
    assert not await harness.step()
    assert harness.registry.calls == 0


async def test_a_step_not_yet_due_does_not_ask_the_registry(harness: Harness) -> None:
    h = harness
    await serving(h, "3")  # the last step finishes the rollout: no registry call
    calls = h.registry.calls

    await h.step(force=False)  # within pollSeconds of the last look

    assert h.registry.calls == calls


# --- HotReload ------------------------------------------------------------------------------------


async def pods(h: Harness, *ports: int) -> list[str]:
    for i, port in enumerate(ports):
        await o.create(h.kube, h.namespace, "pods", o.pod(f"predictor-{i}", {"app": "predictor"}, port))
    return [f"127.0.0.1:{port}" for port in ports]


async def test_a_hot_reload_moves_every_ready_pod_and_leaves_the_template_alone(harness: Harness) -> None:
    h = harness
    h.registry.aliases["production"] = "3"
    await given(h, o.deployment("predictor"), strategy="HotReload")
    addresses = await pods(h, 9101, 9102)

    await h.step()

    status = await h.status()
    assert rolled_out(status) == ("Ready", "HotReloadComplete")
    assert h.outside.served == dict.fromkeys(addresses, "3")
    assert o.pinned_version(await deployment(h)) is None
    assert h.reasons() == ["HotReloading", "HotReloadComplete"]


async def test_a_hot_reload_one_pod_refuses_sends_the_others_back(harness: Harness) -> None:
    h = harness
    h.registry.aliases["production"] = "3"
    await given(h, o.deployment("predictor"), strategy="HotReload")
    good, bad = await pods(h, 9101, 9102)
    await h.step()
    h.outside.broken.add(bad)
    h.registry.aliases["production"] = "4"

    await h.step()

    status = await h.status()
    assert rolled_out(status) == ("Failed", "HotReloadFailed")
    assert (status["resolvedVersion"], status["failedVersion"]) == ("3", "4")
    assert h.outside.served[good] == "3"  # reloaded to 4, then back


async def test_a_hot_reload_without_ready_pods_fails_no_ready_pods_and_retries(harness: Harness) -> None:
    h = harness
    h.registry.aliases["production"] = "3"
    await given(h, o.deployment("predictor"), strategy="HotReload")

    with pytest.raises(RetryLater, match="no ready pods"):
        await h.step()

    status = await h.status()
    assert rolled_out(status) == ("Failed", "NoReadyPods")


async def test_a_hot_reload_found_past_its_deadline_goes_back_to_the_previous_version(
    harness: Harness,
) -> None:
    h = harness
    h.registry.aliases["production"] = "3"
    await given(h, o.deployment("predictor"), strategy="HotReload", deadline=60)
    (address,) = await pods(h, 9101)
    await h.step()
    # An operator that died a minute ago in the middle of a hot reload to version 4:
    h.registry.aliases["production"] = "4"
    h.outside.served[address] = "4"
    started = format_time(h.clock.now - timedelta(seconds=61))
    rolling = {
        "phase": "RollingOut",
        "targetVersion": "4",
        "previousVersion": "3",
        "rolloutStartedAt": started,
    }
    await o.patch_status(h.kube, h.namespace, "modelaliases", "ma", rolling)

    await h.step(force=False)

    status = await h.status()
    assert rolled_out(status) == ("Failed", "DeadlineExceeded")
    assert (status["resolvedVersion"], h.outside.served[address]) == ("3", "3")


# --- the quality gate -----------------------------------------------------------------------------


def evaluation(candidate_pinball: float) -> dict[str, Any]:
    return {
        "model": "btc-lstm",
        "candidate": {"version": "4", "base_date": "2025-07-24", "pinball": candidate_pinball, "mae": 250.0},
        "incumbent": {"version": "3", "base_date": "2025-04-03", "pinball": 90.0, "mae": 250.0},
        "hours": 168,
        "start": "2025-07-25T00:00:00Z",
        "end": "2025-07-31T23:00:00Z",
    }


async def served_3_then_alias_moves_to_4(h: Harness) -> None:
    await serving(h, "3", gate={})  # nothing served before 3: no gate
    h.registry.aliases["production"] = "4"


async def test_a_version_the_gate_refuses_is_blocked_and_the_target_untouched(harness: Harness) -> None:
    h = harness
    await served_3_then_alias_moves_to_4(h)
    h.outside.evaluation = evaluation(candidate_pinball=200.0)

    await h.step()

    status = await h.status()
    assert (status["phase"], status["resolvedVersion"], status["gate"]["decision"]) == (
        "Blocked",
        "3",
        "Refused",
    )
    assert o.condition(status, "RolledOut")["reason"] == "QualityGate"
    assert o.pinned_version(await deployment(h)) == "3"
    assert h.events[-1][:2] == ("Warning", "QualityGate")


async def test_a_version_the_gate_passes_rolls_out_with_the_figures(harness: Harness) -> None:
    h = harness
    await served_3_then_alias_moves_to_4(h)
    h.outside.evaluation = evaluation(candidate_pinball=80.0)

    await h.step()

    status = await h.status()
    assert (status["phase"], status["targetVersion"], status["gate"]["decision"]) == (
        "RollingOut",
        "4",
        "Passed",
    )
    assert o.pinned_version(await deployment(h)) == "4"
    assert "QualityGatePassed" in h.reasons()


async def test_a_facade_without_an_answer_blocks_without_a_verdict(harness: Harness) -> None:
    h = harness
    await served_3_then_alias_moves_to_4(h)

    await h.step()

    status = await h.status()
    rolled_out = o.condition(status, "RolledOut")
    assert (status["phase"], rolled_out["status"], rolled_out["reason"]) == (
        "Blocked",
        "Unknown",
        "GateUnavailable",
    )


# --- the strategies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "kind"), [(Strategy.ROLLOUT, Rollout), (Strategy.HOT_RELOAD, HotReload)]
)
def test_the_spec_picks_the_strategy(strategy: Strategy, kind: type) -> None:
    spec = parse_spec(
        o.model_alias("ma", "m", "a", strategy=strategy)["spec"], default_deadline=1, min_poll_seconds=1
    )
    assert isinstance(strategy_for(spec), kind)
