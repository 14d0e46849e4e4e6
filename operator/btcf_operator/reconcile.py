"""One reconciliation step of a ModelAlias: fetch, decide, act, write status.

Every step works from a fresh read of the resource and writes its status at once through the
status subresource, under a per-object lock: the change handlers and the per-object follower may
both call in, and whichever comes second sees what the first wrote. The state of a change lives in
the status (``phase: RollingOut``, ``targetVersion``, ``previousVersion``, ``rolloutStartedAt``) and
is written before the target is touched, so an operator restarted at any point picks the change up
where the status says it is: the strategy (:mod:`btcf_operator.strategies`) finishes it, or rolls it
back once the deadline has passed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from btcf_operator import metrics
from btcf_operator.gatekeeper import quality_gate
from btcf_operator.plan import Action, needs_resolving_status, plan
from btcf_operator.registry import AliasNotFoundError, RegistryUnavailable
from btcf_operator.spec import parse_spec
from btcf_operator.status import (
    Phase,
    Reason,
    alias_not_found_status,
    condition_reason,
    ready_status,
    registry_unavailable_status,
    resolving_status,
    rollout_started_status,
)
from btcf_operator.step import (
    Context,
    InvalidTarget,
    ObjectState,
    RetryLater,
    Step,
    get_target,
    target_problem,
    write_status,
)
from btcf_operator.strategies import strategy_for
from btcf_operator.targets import TargetError, served_version
from btcforecast.kube import NotFound

logger = logging.getLogger(__name__)


async def reconcile(ctx: Context, namespace: str, name: str, state: ObjectState, *, force: bool) -> bool:
    """One step: check a change in progress, else (when due or forced) follow the alias.

    Returns False when the resource no longer exists (nothing was done), else True. Raises
    ``SpecError`` (a spec to fix), :class:`RetryLater` and :class:`InvalidTarget` (the status says
    why; look again after their ``delay``). Every step is counted by outcome (:mod:`metrics`).
    """
    try:
        found = await _step(ctx, namespace, name, state, force=force)
    except Exception as e:  # a cancelled step (operator stopping) is not counted
        metrics.record_reconcile(True, e)
        raise
    metrics.record_reconcile(found, None)
    return found


async def _step(ctx: Context, namespace: str, name: str, state: ObjectState, *, force: bool) -> bool:
    async with state.lock:
        try:
            body = await ctx.kube.get_modelalias(namespace, name)
        except NotFound:
            return False  # deleted meanwhile
        settings = ctx.settings
        spec = parse_spec(
            body.get("spec") or {},
            default_deadline=settings.rollout_deadline_seconds,
            min_poll_seconds=settings.min_poll_seconds,
        )
        step = Step(body=body, spec=spec)
        try:
            if step.change is not None:
                if force:
                    state.next_poll = 0.0  # the spec changed: look at the alias again once this change ends
                await strategy_for(spec).check(ctx, step)
            elif force or time.monotonic() >= state.next_poll:
                await follow_alias(ctx, step, state)
        except TargetError as e:
            await _invalid_target(ctx, step, state, e)
        finally:
            metrics.record_phase(namespace, name, step.status.get("phase"))
        return True


async def follow_alias(ctx: Context, step: Step, state: ObjectState) -> None:
    """Ask MLflow where the alias points and act if that is not what is served."""
    spec = step.spec
    if needs_resolving_status(step.status, step.generation):
        new = resolving_status(
            step.status, step.generation, ctx.clock(), model=spec.registered_model, alias=spec.alias
        )
        await write_status(ctx, step, new)
    logger.debug(
        "%s/%s: asking MLflow where %s/%s points",
        step.namespace,
        step.name,
        spec.registered_model,
        spec.alias,
    )
    version = await _resolve(ctx, step, state)
    logger.debug(
        "%s/%s: MLflow: %s/%s is version %s",
        step.namespace,
        step.name,
        spec.registered_model,
        spec.alias,
        version,
    )
    state.next_poll = time.monotonic() + spec.poll_seconds
    action = plan(step.status, step.generation, version)
    if action is Action.MARK_READY:
        new = ready_status(
            step.status,
            step.generation,
            ctx.clock(),
            alias=spec.alias,
            version=version,
            previous_version=step.status.get("previousVersion"),
        )
        await write_status(ctx, step, new)
    elif action is Action.ROLL_OUT:
        await start_change(ctx, step, version)
    state.failures = 0  # only a step that went through ends a backoff (an invalid target keeps it)


async def _resolve(ctx: Context, step: Step, state: ObjectState) -> str:
    """The version the alias points at; a missing alias or an unreachable MLflow is a retry."""
    spec = step.spec
    try:
        return await ctx.resolver.resolve(spec.registered_model, spec.alias)
    except AliasNotFoundError as e:
        delay = state.failed_attempt(ctx.settings)
        first = (
            step.status.get("phase") != Phase.FAILED
            or condition_reason(step.status, "Resolved") != Reason.ALIAS_NOT_FOUND
        )
        new = alias_not_found_status(
            step.status,
            step.generation,
            ctx.clock(),
            model=spec.registered_model,
            alias=spec.alias,
            retry_in=delay,
        )
        await write_status(ctx, step, new)
        if first:
            ctx.post_event(step.body, "Warning", Reason.ALIAS_NOT_FOUND, str(e))
        raise RetryLater(f"alias not found: {e}", delay) from e
    except RegistryUnavailable as e:
        delay = state.failed_attempt(ctx.settings)
        new = registry_unavailable_status(
            step.status, step.generation, ctx.clock(), error=str(e), retry_in=delay
        )
        await write_status(ctx, step, new)
        raise RetryLater(str(e), delay) from e


async def start_change(ctx: Context, step: Step, version: str) -> None:
    """Check the target, pass the quality gate, record the change in status, then let the strategy move it."""
    spec, strategy = step.spec, strategy_for(step.spec)
    target = await get_target(ctx, step)
    strategy.check_target(target, spec.target_kind)
    previous = step.status.get("resolvedVersion") or served_version(target, spec.target_kind)
    if previous == version:
        previous = step.status.get("previousVersion")
    gate_record: dict[str, Any] | None = None
    if spec.gate is not None and previous is not None and previous != version:
        gate_record = await quality_gate(ctx, step, version, previous)
        if gate_record is None:
            return  # held back: the status says why; the incumbent keeps serving
    new = rollout_started_status(
        step.status,
        step.generation,
        ctx.clock(),
        alias=spec.alias,
        target_version=version,
        previous_version=previous,
        how=strategy.doing,
        gate=gate_record,
    )
    await write_status(ctx, step, new)
    logger.debug("%s/%s: change to version %s recorded in status", step.namespace, step.name, version)
    metrics.record_rollout_started(str(spec.strategy))
    ctx.post_event(
        step.body, "Normal", strategy.started, f"{spec.alias}: version {previous or 'none'} -> {version}"
    )
    await strategy.start(ctx, step, target)
    if step.change is not None:
        await strategy.check(ctx, step)


async def _invalid_target(ctx: Context, step: Step, state: ObjectState, error: TargetError) -> None:
    """Failed/InvalidTarget, one Warning event per episode, and a backoff before the next look."""
    detail = f"{step.where} cannot be served: {error}"
    first = (
        step.status.get("phase") != Phase.FAILED
        or condition_reason(step.status, "RolledOut") != Reason.INVALID_TARGET
    )
    delay = state.failed_attempt(ctx.settings)
    await target_problem(ctx, step, Reason.INVALID_TARGET, detail)
    if first:
        ctx.post_event(step.body, "Warning", Reason.INVALID_TARGET, detail)
    raise InvalidTarget(detail, delay) from error
