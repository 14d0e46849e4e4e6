"""How a version reaches the predictor: Rollout (patch the target) or HotReload (swap in place).

Each strategy has the same two steps. ``start`` moves the target to a version once the status
records the change (``RollingOut``); ``check`` looks at a change in progress and finishes it
(``Ready``), rolls it back (``Failed``) or leaves it under way. The reconcile step picks the
strategy from the spec (:func:`strategy_for`) and never branches on it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from btcf_operator import metrics
from btcf_operator.hotreload import ReloadOptions, ReloadOutcome, hot_reload
from btcf_operator.spec import Spec, Strategy, TargetKind
from btcf_operator.status import Reason, ready_status, rollout_failed_status
from btcf_operator.step import Change, Context, RetryLater, Step, get_target, target_problem, write_status
from btcf_operator.targets import (
    check_pinnable,
    pod_endpoint,
    pod_selector,
    served_version,
    target_progress,
    version_patch,
)
from btcf_operator.timing import deadline_passed
from btcforecast.kube import Conflict

PATCH_ATTEMPTS = 5

logger = logging.getLogger(__name__)


class VersionStrategy(Protocol):
    started: ClassVar[str]
    """The Normal event's reason when a change starts."""
    doing: ClassVar[str]
    """The verb of the status message while the change is under way."""

    def check_target(self, target: Mapping[str, Any], kind: TargetKind) -> None:
        """Raise ``TargetError`` when this strategy cannot act on ``target``."""

    async def start(self, ctx: Context, step: Step, target: dict[str, Any]) -> None:
        """Move ``target`` to the version of ``step.change`` (the status already records it)."""

    async def check(self, ctx: Context, step: Step) -> None:
        """Finish, roll back or leave under way the change in progress (``step.change``)."""


def _change(step: Step) -> Change:
    change = step.change
    if change is None:
        raise ValueError(f"{step.namespace}/{step.name} has no change in progress")
    return change


def _late(ctx: Context, step: Step, change: Change) -> bool:
    return deadline_passed(change.started_at, step.spec.rollout_deadline_seconds, ctx.clock())


async def _finished(ctx: Context, step: Step, change: Change, *, reason: Reason, summary: str) -> None:
    new = ready_status(
        step.status,
        change.generation,
        ctx.clock(),
        alias=step.spec.alias,
        version=change.version,
        previous_version=change.previous,
        reason=reason,
    )
    await write_status(ctx, step, new)
    metrics.record_rollout_completed(str(step.spec.strategy))
    ctx.post_event(step.body, "Normal", reason, summary)


async def _failed(
    ctx: Context, step: Step, change: Change, *, restored: str | None, reason: Reason, detail: str
) -> None:
    new = rollout_failed_status(
        step.status,
        change.generation,
        ctx.clock(),
        alias=step.spec.alias,
        failed_version=change.version,
        restored_version=restored,
        reason=reason,
        detail=detail,
    )
    await write_status(ctx, step, new)
    metrics.record_rollback(str(step.spec.strategy), str(reason))
    ctx.post_event(step.body, "Warning", reason, new["message"])


class Rollout:
    """Pin the version on the predictor container (env and annotation); the controller rolls the pods."""

    started: ClassVar[str] = "RollingOut"
    doing: ClassVar[str] = "rolling out"

    def check_target(self, target: Mapping[str, Any], kind: TargetKind) -> None:
        check_pinnable(target, kind)

    async def start(self, ctx: Context, step: Step, target: dict[str, Any]) -> None:
        await set_target_version(ctx, step, target, _change(step).version)

    async def check(self, ctx: Context, step: Step) -> None:
        change, spec = _change(step), step.spec
        late = _late(ctx, step, change)
        target = await get_target(ctx, step)
        self.check_target(target, spec.target_kind)
        if not late and served_version(target, spec.target_kind) != change.version:
            # Restarted between writing the status and patching the target: patch it now.
            await set_target_version(ctx, step, target, change.version)
            return
        progress = target_progress(spec.target_kind, target)
        if progress.done:
            summary = f"serving version {change.version}"
            await _finished(ctx, step, change, reason=Reason.ROLLOUT_COMPLETE, summary=summary)
        elif progress.failed:
            await set_target_version(ctx, step, target, change.previous)
            await _failed(
                ctx,
                step,
                change,
                restored=change.previous,
                reason=Reason.ROLLOUT_FAILED,
                detail=progress.message,
            )
        elif late:
            await set_target_version(ctx, step, target, change.previous)
            detail = f"not rolled out within {spec.rollout_deadline_seconds} s ({progress.message})"
            await _failed(
                ctx, step, change, restored=change.previous, reason=Reason.DEADLINE_EXCEEDED, detail=detail
            )
        else:
            await write_status(
                ctx, step, {"message": f"rolling out version {change.version}: {progress.message}"}
            )


async def set_target_version(ctx: Context, step: Step, target: dict[str, Any], version: str | None) -> None:
    """Patch the target to ``version``; on a concurrent change, re-read it and try again."""
    spec = step.spec
    for attempt in range(PATCH_ATTEMPTS):
        if served_version(target, spec.target_kind) == version:
            return
        try:
            await ctx.kube.json_patch_target(
                spec.target_kind,
                step.namespace,
                spec.target_name,
                version_patch(target, spec.target_kind, version),
            )
            logger.info("%s/%s: %s pinned to version %s", step.namespace, step.name, step.where, version)
            return
        except Conflict:
            if attempt == PATCH_ATTEMPTS - 1:
                raise
            target = await ctx.kube.get_target(spec.target_kind, step.namespace, spec.target_name)


class HotReload:
    """Every ready pod of the target loads the version in place, or none does (:mod:`hotreload`).

    The pod template is not touched. Loading is idempotent, so ``check`` of a hot reload found
    under way (the operator stopped in the middle) simply reloads again, or, past the deadline,
    sends the pods back to the previous version.
    """

    started: ClassVar[str] = "HotReloading"
    doing: ClassVar[str] = "hot-reloading"

    def check_target(self, target: Mapping[str, Any], kind: TargetKind) -> None:
        pod_selector(target, kind)

    async def start(self, ctx: Context, step: Step, target: dict[str, Any]) -> None:
        change = _change(step)
        endpoints = await self._endpoints(ctx, step, target)
        outcome = await hot_reload(
            ctx.http, endpoints, change.version, change.previous, await _options(ctx, step)
        )
        await self._record(ctx, step, change, outcome)

    async def check(self, ctx: Context, step: Step) -> None:
        change = _change(step)
        target = await get_target(ctx, step)
        if not _late(ctx, step, change):
            await self.start(ctx, step, target)
            return
        endpoints = await self._endpoints(ctx, step, target)
        if change.previous is not None:
            await hot_reload(ctx.http, endpoints, change.previous, None, await _options(ctx, step))
        detail = f"not finished within {step.spec.rollout_deadline_seconds} s"
        await _failed(
            ctx, step, change, restored=change.previous, reason=Reason.DEADLINE_EXCEEDED, detail=detail
        )

    async def _endpoints(self, ctx: Context, step: Step, target: Mapping[str, Any]) -> dict[str, str]:
        """name -> base URL of each ready pod; none is ``NoReadyPods`` and a retry."""
        selector = pod_selector(target, step.spec.target_kind)
        pods = await ctx.kube.list_pods(step.namespace, selector)
        port = ctx.settings.predictor_port
        endpoints = {
            str(pod["metadata"]["name"]): url for pod in pods if (url := pod_endpoint(pod, port)) is not None
        }
        if not endpoints:
            detail = f"{step.spec.target_kind} {step.spec.target_name} has no ready pods to hot-reload"
            await target_problem(ctx, step, Reason.NO_READY_PODS, detail)
            raise RetryLater(detail, ctx.settings.retry_initial_seconds)
        return endpoints

    async def _record(self, ctx: Context, step: Step, change: Change, outcome: ReloadOutcome) -> None:
        if outcome.ok:
            await _finished(ctx, step, change, reason=Reason.HOT_RELOAD_COMPLETE, summary=outcome.summary)
            return
        restored = change.previous if outcome.rolled_back and not outcome.rollback_failures else None
        detail = outcome.summary + (
            f"; rollback failed on {sorted(outcome.rollback_failures)}" if outcome.rollback_failures else ""
        )
        await _failed(ctx, step, change, restored=restored, reason=Reason.HOT_RELOAD_FAILED, detail=detail)


async def _options(ctx: Context, step: Step) -> ReloadOptions:
    settings = ctx.settings
    return ReloadOptions(
        model_name=settings.predictor_model_name,
        token=await _reload_token(ctx, step),
        retries=settings.hotreload_retries,
        retry_delay=settings.hotreload_retry_delay,
    )


async def _reload_token(ctx: Context, step: Step) -> str | None:
    ref = step.spec.reload_token_secret
    if ref is not None:
        return await ctx.kube.read_secret_value(step.namespace, ref[0], ref[1])
    token = ctx.settings.reload_token
    return token.get_secret_value() if token is not None else None


STRATEGIES: dict[Strategy, VersionStrategy] = {Strategy.ROLLOUT: Rollout(), Strategy.HOT_RELOAD: HotReload()}


def strategy_for(spec: Spec) -> VersionStrategy:
    return STRATEGIES[spec.strategy]
