"""One reconciliation step of a ModelAlias: fetch, decide (decisions.py), act, write status.

Every step works from a fresh read of the resource and writes its status at once through the
status subresource, under a per-object lock: the change handlers and the per-object daemon may both
call in, and whichever comes second sees what the first wrote. The state of a rollout lives in the
status (``phase: RollingOut``, ``targetVersion``, ``previousVersion``, ``rolloutStartedAt``) and
is written before the target is touched, so an operator restarted at any point picks the rollout up
where the status says it is: it finishes it, or rolls it back once the deadline has passed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from btcf_operator import decisions as d
from btcf_operator import gate as g
from btcf_operator.evaluation import GateNoData, GateUnavailable, request_evaluation
from btcf_operator.hotreload import ReloadOptions, hot_reload
from btcf_operator.kube import KubeApi
from btcf_operator.registry import AliasNotFoundError, AliasResolver, RegistryUnavailable
from btcf_operator.settings import OperatorSettings
from btcforecast.kube import Conflict, NotFound

logger = logging.getLogger(__name__)

EventPoster = Callable[[Mapping[str, Any], str, str, str], None]
"""(resource body, "Normal" | "Warning", reason, message) -> posts a Kubernetes Event."""


class RetryLater(Exception):
    """The step could not finish for a reason that may pass (MLflow down, alias or target missing)."""

    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


class InvalidTarget(Exception):
    """The target has a shape the strategy cannot act on; the status says so (``InvalidTarget``).

    Not a kopf retry: the per-resource follower looks again with backoff (``delay``), so a target
    fixed later is picked up without a new spec, and a broken one costs one GET per backoff step.
    """

    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


@dataclass
class Context:
    """What a step needs, built once at operator start-up."""

    settings: OperatorSettings
    kube: KubeApi
    resolver: AliasResolver
    http: httpx.AsyncClient
    post_event: EventPoster
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@dataclass
class ObjectState:
    """Per-resource memory of this operator process (lost on restart, which is fine)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_poll: float = 0.0  # time.monotonic() when MLflow is next asked
    failures: int = 0  # consecutive resolve failures, for the backoff


@dataclass
class Step:
    """The inputs of one step: the fresh resource and its parsed spec."""

    body: dict[str, Any]
    spec: d.Spec

    @property
    def namespace(self) -> str:
        return str(self.body["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def generation(self) -> int:
        return int(self.body["metadata"].get("generation") or 0)

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.body.get("status") or {})


async def reconcile(ctx: Context, namespace: str, name: str, state: ObjectState, *, force: bool) -> bool:
    """One step: continue a rollout in progress, else (when due or forced) follow the alias.

    Returns False when the resource no longer exists (nothing was done), else True.
    """
    async with state.lock:
        try:
            body = await ctx.kube.get_modelalias(namespace, name)
        except NotFound:
            return False  # deleted meanwhile
        spec = d.parse_spec(
            body.get("spec") or {},
            default_deadline=ctx.settings.rollout_deadline_seconds,
            min_poll_seconds=ctx.settings.min_poll_seconds,
        )
        step = Step(body=body, spec=spec)
        try:
            if d.is_rolling_out(step.status):
                if force:
                    state.next_poll = 0.0  # the spec changed: look at the alias again once this rollout ends
                await continue_rollout(ctx, step)
            elif force or time.monotonic() >= state.next_poll:
                await follow_alias(ctx, step, state)
        except d.TargetError as e:
            await _invalid_target(ctx, step, state, e)
        return True


async def _invalid_target(ctx: Context, step: Step, state: ObjectState, error: d.TargetError) -> None:
    """Failed/InvalidTarget, one Warning event per episode, and a backoff before the next look."""
    spec = step.spec
    detail = f"{spec.target_kind} {step.namespace}/{spec.target_name} cannot be served: {error}"
    first = (
        step.status.get("phase") != d.Phase.FAILED
        or _reason(step.status, "RolledOut") != d.Reason.INVALID_TARGET
    )
    delay = _failed_attempt(ctx, state)
    await write_status(
        ctx,
        step,
        d.target_problem_status(
            step.status,
            _generation_of_step(step),
            ctx.clock(),
            reason=d.Reason.INVALID_TARGET,
            detail=detail,
        ),
    )
    if first:
        ctx.post_event(step.body, "Warning", d.Reason.INVALID_TARGET, detail)
    raise InvalidTarget(detail, delay) from error


async def write_status(ctx: Context, step: Step, new: Mapping[str, Any]) -> None:
    if d.status_changed(step.status, new):
        patched = await ctx.kube.patch_modelalias_status(step.namespace, step.name, new)
        step.body["status"] = patched.get("status") or {**step.status, **new}


async def follow_alias(ctx: Context, step: Step, state: ObjectState) -> None:
    """Ask MLflow where the alias points and act if that is not what is served."""
    spec, now = step.spec, ctx.clock()
    if d.needs_resolving_status(step.status, step.generation):
        await write_status(
            ctx,
            step,
            d.resolving_status(
                step.status, step.generation, now, model=spec.registered_model, alias=spec.alias
            ),
        )
    try:
        version = await ctx.resolver.resolve(spec.registered_model, spec.alias)
    except AliasNotFoundError as e:
        delay = _failed_attempt(ctx, state)
        first = (
            step.status.get("phase") != d.Phase.FAILED
            or _reason(step.status, "Resolved") != d.Reason.ALIAS_NOT_FOUND
        )
        await write_status(
            ctx,
            step,
            d.alias_not_found_status(
                step.status,
                step.generation,
                now,
                model=spec.registered_model,
                alias=spec.alias,
                retry_in=delay,
            ),
        )
        if first:
            ctx.post_event(step.body, "Warning", d.Reason.ALIAS_NOT_FOUND, str(e))
        raise RetryLater(f"alias not found: {e}", delay) from e
    except RegistryUnavailable as e:
        delay = _failed_attempt(ctx, state)
        await write_status(
            ctx,
            step,
            d.registry_unavailable_status(step.status, step.generation, now, error=str(e), retry_in=delay),
        )
        raise RetryLater(str(e), delay) from e
    state.next_poll = time.monotonic() + spec.poll_seconds

    action = d.plan(step.status, step.generation, version)
    if action is d.Action.MARK_READY:
        await write_status(
            ctx,
            step,
            d.ready_status(
                step.status,
                step.generation,
                now,
                alias=spec.alias,
                version=version,
                previous_version=step.status.get("previousVersion"),
            ),
        )
    elif action is d.Action.ROLL_OUT:
        await start_rollout(ctx, step, version)
    state.failures = 0  # only a step that went through ends a backoff (an invalid target keeps it)


def _failed_attempt(ctx: Context, state: ObjectState) -> float:
    delay = d.backoff(state.failures, ctx.settings.retry_initial_seconds, ctx.settings.retry_max_seconds)
    state.failures += 1
    state.next_poll = time.monotonic() + delay
    return delay


def _reason(status: Mapping[str, Any], condition_type: str) -> str | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == condition_type:
            return condition.get("reason")
    return None


async def _get_target(ctx: Context, step: Step) -> dict[str, Any]:
    spec = step.spec
    try:
        return await ctx.kube.get_target(spec.target_kind, step.namespace, spec.target_name)
    except NotFound as e:
        detail = f"{spec.target_kind} {step.namespace}/{spec.target_name} not found"
        await write_status(
            ctx,
            step,
            d.target_problem_status(
                step.status,
                _generation_of_step(step),
                ctx.clock(),
                reason=d.Reason.TARGET_NOT_FOUND,
                detail=detail,
            ),
        )
        raise RetryLater(detail, ctx.settings.retry_initial_seconds) from e


def _generation_of_step(step: Step) -> int:
    """The generation a rollout in progress was started for, else the current one."""
    if d.is_rolling_out(step.status) and step.status.get("observedGeneration") is not None:
        return int(step.status["observedGeneration"])
    return step.generation


async def start_rollout(ctx: Context, step: Step, version: str) -> None:
    """Record the rollout in status first, then move the target (patch, or hot reload)."""
    spec = step.spec
    target = await _get_target(ctx, step)
    d.check_target(target, spec.target_kind, spec.strategy)
    previous = step.status.get("resolvedVersion") or d.served_version(target, spec.target_kind)
    if previous == version:
        previous = step.status.get("previousVersion")
    gate_record: dict[str, Any] | None = None
    if spec.gate is not None and previous is not None and previous != version:
        gate_record = await quality_gate(ctx, step, version, previous)
        if gate_record is None:
            return  # held back: the status says why; the incumbent keeps serving
    await write_status(
        ctx,
        step,
        d.rollout_started_status(
            step.status,
            step.generation,
            ctx.clock(),
            alias=spec.alias,
            target_version=version,
            previous_version=previous,
            strategy=spec.strategy,
            gate=gate_record,
        ),
    )
    verb = "HotReloading" if spec.strategy is d.Strategy.HOT_RELOAD else "RollingOut"
    ctx.post_event(step.body, "Normal", verb, f"{spec.alias}: version {previous or 'none'} -> {version}")
    if spec.strategy is d.Strategy.ROLLOUT:
        await set_target_version(ctx, step, target, version)
    await continue_rollout(ctx, step)


async def quality_gate(ctx: Context, step: Step, candidate: str, incumbent: str) -> dict[str, Any] | None:
    """Backtest ``candidate`` against ``incumbent`` (the facade) and judge it (:mod:`gate`).

    Passed: the ``status.gate`` record to write with the rollout. Otherwise the resource goes
    ``Blocked`` (``QualityGate`` with the figures, ``GateNoData`` or ``GateUnavailable`` with the
    reason), one Warning event per episode, and None: nothing is rolled out. A refusal stands
    until the alias moves or the spec changes (:func:`decisions.plan`); no verdict is asked for
    again at the next poll.
    """
    spec, settings = step.spec, ctx.settings
    assert spec.gate is not None
    try:
        evaluation = await request_evaluation(
            ctx.http,
            settings.facade_url,
            model=spec.registered_model,
            candidate=candidate,
            incumbent=incumbent,
            gate=spec.gate,
            timeout=settings.gate_timeout,
        )
    except GateNoData as e:
        record = g.no_verdict_record(candidate, incumbent, spec.gate, g.Verdict.NO_DATA, str(e))
        await _blocked(ctx, step, candidate, incumbent, d.Reason.GATE_NO_DATA, str(e), record)
        return None
    except GateUnavailable as e:
        record = g.no_verdict_record(candidate, incumbent, spec.gate, g.Verdict.UNAVAILABLE, str(e))
        await _blocked(ctx, step, candidate, incumbent, d.Reason.GATE_UNAVAILABLE, str(e), record)
        return None
    decision = g.decide(evaluation, spec.gate)
    record = g.gate_record(evaluation, spec.gate, decision, ctx.clock())
    if not decision.passed:
        await _blocked(ctx, step, candidate, incumbent, d.Reason.QUALITY_GATE, record["message"], record)
        return None
    ctx.post_event(step.body, "Normal", d.Reason.GATE_PASSED, record["message"])
    return record


async def _blocked(
    ctx: Context,
    step: Step,
    candidate: str,
    incumbent: str,
    reason: d.Reason,
    detail: str,
    record: dict[str, Any],
) -> None:
    status = step.status
    first = (
        status.get("phase") != d.Phase.BLOCKED
        or _reason(status, "RolledOut") != reason
        or (status.get("gate") or {}).get("candidate") != candidate
        or status.get("observedGeneration") != step.generation
    )
    new = d.gate_blocked_status(
        status,
        step.generation,
        ctx.clock(),
        alias=step.spec.alias,
        candidate=candidate,
        incumbent=incumbent,
        reason=reason,
        detail=detail,
        gate=record,
    )
    await write_status(ctx, step, new)
    if first:
        ctx.post_event(step.body, "Warning", reason, new["message"])


async def set_target_version(ctx: Context, step: Step, target: dict[str, Any], version: str | None) -> None:
    """Patch the target to ``version``; on a concurrent change, re-read it and try again."""
    spec = step.spec
    for attempt in range(5):
        if d.served_version(target, spec.target_kind) == version:
            return
        try:
            await ctx.kube.json_patch_target(
                spec.target_kind,
                step.namespace,
                spec.target_name,
                d.version_patch(target, spec.target_kind, version),
            )
            return
        except Conflict:
            if attempt == 4:
                raise
            target = await ctx.kube.get_target(spec.target_kind, step.namespace, spec.target_name)


async def continue_rollout(ctx: Context, step: Step) -> None:
    """Check a rollout in progress: finish it, or roll it back when it failed or is late."""
    status, spec, now = step.status, step.spec, ctx.clock()
    target_version = str(status["targetVersion"])
    previous = status.get("previousVersion")
    generation = _generation_of_step(step)
    late = d.deadline_passed(status.get("rolloutStartedAt"), spec.rollout_deadline_seconds, now)
    if spec.strategy is d.Strategy.HOT_RELOAD:
        await _hot_reload_step(ctx, step, target_version, previous, generation, late)
        return

    target = await _get_target(ctx, step)
    d.check_target(target, spec.target_kind, spec.strategy)
    if not late and d.served_version(target, spec.target_kind) != target_version:
        # Restarted between writing the status and patching the target: patch it now.
        await set_target_version(ctx, step, target, target_version)
        return
    progress = d.target_progress(spec.target_kind, target)
    if progress.done:
        await write_status(
            ctx,
            step,
            d.ready_status(
                status, generation, now, alias=spec.alias, version=target_version, previous_version=previous
            ),
        )
        ctx.post_event(step.body, "Normal", d.Reason.ROLLOUT_COMPLETE, f"serving version {target_version}")
        return
    if progress.failed or late:
        reason = d.Reason.ROLLOUT_FAILED if progress.failed else d.Reason.DEADLINE_EXCEEDED
        detail = (
            progress.message
            if progress.failed
            else (f"not rolled out within {spec.rollout_deadline_seconds} s ({progress.message})")
        )
        await set_target_version(ctx, step, target, previous)
        await write_status(
            ctx,
            step,
            d.rollout_failed_status(
                status,
                generation,
                now,
                alias=spec.alias,
                failed_version=target_version,
                restored_version=previous,
                reason=reason,
                detail=detail,
            ),
        )
        ctx.post_event(step.body, "Warning", reason, step.status.get("message", detail))
        return
    if status.get("message") != f"rolling out version {target_version}: {progress.message}":
        await write_status(
            ctx, step, {"message": f"rolling out version {target_version}: {progress.message}"}
        )


async def _reload_token(ctx: Context, step: Step) -> str | None:
    ref = step.spec.reload_token_secret
    if ref is not None:
        return await ctx.kube.read_secret_value(step.namespace, ref[0], ref[1])
    token = ctx.settings.reload_token
    return token.get_secret_value() if token is not None else None


async def _hot_reload_step(
    ctx: Context, step: Step, version: str, previous: str | None, generation: int, late: bool
) -> None:
    spec, settings = step.spec, ctx.settings
    target = await _get_target(ctx, step)
    pods = await ctx.kube.list_pods(step.namespace, d.pod_selector(target, spec.target_kind))
    endpoints = {
        str(pod["metadata"]["name"]): url
        for pod in pods
        if (url := d.pod_endpoint(pod, settings.predictor_port)) is not None
    }
    if not endpoints:
        detail = f"{spec.target_kind} {spec.target_name} has no ready pods to hot-reload"
        await write_status(
            ctx,
            step,
            d.target_problem_status(
                step.status, generation, ctx.clock(), reason=d.Reason.NO_READY_PODS, detail=detail
            ),
        )
        raise RetryLater(detail, settings.retry_initial_seconds)
    options = ReloadOptions(
        model_name=settings.predictor_model_name,
        token=await _reload_token(ctx, step),
        retries=settings.hotreload_retries,
        retry_delay=settings.hotreload_retry_delay,
    )
    if late:  # a restarted operator found a hot reload past its deadline: back to the previous version
        if previous is not None:
            await hot_reload(ctx.http, endpoints, previous, None, options)
        await _hot_reload_failed(
            ctx,
            step,
            generation,
            version,
            previous,
            d.Reason.DEADLINE_EXCEEDED,
            f"not finished within {spec.rollout_deadline_seconds} s",
        )
        return
    outcome = await hot_reload(ctx.http, endpoints, version, previous, options)
    if outcome.ok:
        await write_status(
            ctx,
            step,
            d.ready_status(
                step.status,
                generation,
                ctx.clock(),
                alias=spec.alias,
                version=version,
                previous_version=previous,
                reason=d.Reason.HOT_RELOAD_COMPLETE,
            ),
        )
        ctx.post_event(step.body, "Normal", d.Reason.HOT_RELOAD_COMPLETE, outcome.summary)
        return
    restored = previous if outcome.rolled_back and not outcome.rollback_failures else None
    detail = outcome.summary + (
        f"; rollback failed on {sorted(outcome.rollback_failures)}" if outcome.rollback_failures else ""
    )
    await _hot_reload_failed(ctx, step, generation, version, restored, d.Reason.HOT_RELOAD_FAILED, detail)


async def _hot_reload_failed(
    ctx: Context,
    step: Step,
    generation: int,
    version: str,
    restored: str | None,
    reason: d.Reason,
    detail: str,
) -> None:
    new = d.rollout_failed_status(
        step.status,
        generation,
        ctx.clock(),
        alias=step.spec.alias,
        failed_version=version,
        restored_version=restored,
        reason=reason,
        detail=detail,
    )
    await write_status(ctx, step, new)
    ctx.post_event(step.body, "Warning", reason, new["message"])
