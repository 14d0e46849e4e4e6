"""What one reconciliation step works with: the operator's context, the fresh resource, its status.

Shared by the step itself (:mod:`btcf_operator.reconcile`), the strategies
(:mod:`btcf_operator.strategies`) and the quality gate's step (:mod:`btcf_operator.gatekeeper`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from btcf_operator.kube import KubeApi
from btcf_operator.plan import is_rolling_out
from btcf_operator.settings import OperatorSettings
from btcf_operator.spec import Spec
from btcf_operator.status import Reason, status_changed, target_problem_status
from btcf_operator.timing import backoff
from btcforecast.kube import NotFound

EventPoster = Callable[[Mapping[str, Any], str, str, str], None]
"""(resource body, "Normal" | "Warning", reason, message) -> posts a Kubernetes Event."""


class Resolver(Protocol):
    """alias -> version (:class:`btcf_operator.registry.AliasResolver` against MLflow)."""

    async def resolve(self, model: str, alias: str) -> str: ...


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
    resolver: Resolver
    http: httpx.AsyncClient
    post_event: EventPoster
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@dataclass
class ObjectState:
    """Per-resource memory of this operator process (lost on restart, which is fine)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_poll: float = 0.0  # time.monotonic() when MLflow is next asked
    failures: int = 0  # consecutive failed attempts, for the backoff
    woken: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        """The alias moved (an MLflow webhook said so): the follower's next step, now, asks MLflow."""
        self.woken.set()

    async def nap(self, seconds: float) -> bool:
        """Sleep ``seconds``, or less if :meth:`wake` is called (before or during the nap); True if woken.

        A wake-up makes the alias due whatever a step running meanwhile set: that step may have
        asked MLflow a moment before the alias moved.
        """
        try:
            await asyncio.wait_for(self.woken.wait(), seconds)
        except TimeoutError:
            return False
        self.woken.clear()
        self.next_poll = 0.0
        return True

    def failed_attempt(self, settings: OperatorSettings) -> float:
        """Count a failed attempt; the delay until the next one (exponential backoff)."""
        delay = backoff(self.failures, settings.retry_initial_seconds, settings.retry_max_seconds)
        self.failures += 1
        self.next_poll = time.monotonic() + delay
        return delay


@dataclass(frozen=True)
class Change:
    """The version change a ``RollingOut`` status records: what a restarted operator picks up."""

    version: str
    previous: str | None
    generation: int
    """The spec generation the change was started for."""
    started_at: str | None


@dataclass
class Step:
    """The inputs of one step: the fresh resource and its parsed spec."""

    body: dict[str, Any]
    spec: Spec

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

    @property
    def status_generation(self) -> int:
        """The generation a change in progress was started for, else the current one."""
        change = self.change
        return change.generation if change is not None else self.generation

    @property
    def change(self) -> Change | None:
        """The change in progress, or None."""
        status = self.status
        if not is_rolling_out(status):
            return None
        observed = status.get("observedGeneration")
        return Change(
            version=str(status["targetVersion"]),
            previous=status.get("previousVersion"),
            generation=self.generation if observed is None else int(observed),
            started_at=status.get("rolloutStartedAt"),
        )

    @property
    def where(self) -> str:
        """The target, as messages name it."""
        return f"{self.spec.target_kind} {self.namespace}/{self.spec.target_name}"


async def write_status(ctx: Context, step: Step, new: Mapping[str, Any]) -> None:
    """Patch the status subresource with ``new`` unless that changes nothing; ``step`` sees the result."""
    if status_changed(step.status, new):
        patched = await ctx.kube.patch_modelalias_status(step.namespace, step.name, new)
        step.body["status"] = patched.get("status") or {**step.status, **new}


async def target_problem(ctx: Context, step: Step, reason: Reason, detail: str) -> None:
    """Failed with ``reason``: the target is missing or unusable; no version is marked bad."""
    new = target_problem_status(
        step.status, step.status_generation, ctx.clock(), reason=reason, detail=detail
    )
    await write_status(ctx, step, new)


async def get_target(ctx: Context, step: Step) -> dict[str, Any]:
    """The target object; a missing one is ``TargetNotFound`` in the status and a retry."""
    spec = step.spec
    try:
        return await ctx.kube.get_target(spec.target_kind, step.namespace, spec.target_name)
    except NotFound as e:
        detail = f"{step.where} not found"
        await target_problem(ctx, step, Reason.TARGET_NOT_FOUND, detail)
        raise RetryLater(detail, ctx.settings.retry_initial_seconds) from e
