"""The quality gate as a step: ask the facade for both versions' figures, judge, hold back or let pass.

The figures come from the facade (:mod:`btcf_operator.evaluation`), the verdict from pure functions
(:mod:`btcf_operator.gate`); here the verdict becomes the resource's status and events.
"""

from __future__ import annotations

from typing import Any

from btcf_operator import gate as g
from btcf_operator import metrics
from btcf_operator.evaluation import GateNoData, GateUnavailable, request_evaluation
from btcf_operator.status import Phase, Reason, condition_reason, gate_blocked_status
from btcf_operator.step import Context, Step, write_status


async def quality_gate(ctx: Context, step: Step, candidate: str, incumbent: str) -> dict[str, Any] | None:
    """Backtest ``candidate`` against ``incumbent`` (the facade) and judge it (:mod:`gate`).

    Passed: the ``status.gate`` record to write with the rollout. Otherwise the resource goes
    ``Blocked`` (``QualityGate`` with the figures, ``GateNoData`` or ``GateUnavailable`` with the
    reason), one Warning event per episode, and None: nothing is rolled out. A refusal stands
    until the alias moves or the spec changes (:func:`btcf_operator.plan.plan`); no verdict is
    asked for again at the next poll.
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
        metrics.record_gate_decision("no_data")
        record = g.no_verdict_record(candidate, incumbent, spec.gate, g.Verdict.NO_DATA, str(e))
        await _hold_back(ctx, step, record, reason=Reason.GATE_NO_DATA, detail=str(e))
        return None
    except GateUnavailable as e:
        metrics.record_gate_decision("unavailable")
        record = g.no_verdict_record(candidate, incumbent, spec.gate, g.Verdict.UNAVAILABLE, str(e))
        await _hold_back(ctx, step, record, reason=Reason.GATE_UNAVAILABLE, detail=str(e))
        return None
    decision = g.decide(evaluation, spec.gate)
    metrics.record_gate_decision("passed" if decision.passed else "refused")
    record = g.gate_record(evaluation, spec.gate, decision, ctx.clock())
    if not decision.passed:
        await _hold_back(ctx, step, record, reason=Reason.QUALITY_GATE, detail=record["message"])
        return None
    ctx.post_event(step.body, "Normal", Reason.GATE_PASSED, record["message"])
    return record


async def _hold_back(
    ctx: Context, step: Step, record: dict[str, Any], *, reason: Reason, detail: str
) -> None:
    """``Blocked`` with the gate's record; a Warning event when this is a new episode."""
    status, candidate = step.status, str(record["candidate"])
    first = (
        status.get("phase") != Phase.BLOCKED
        or condition_reason(status, "RolledOut") != reason
        or (status.get("gate") or {}).get("candidate") != candidate
        or status.get("observedGeneration") != step.generation
    )
    new = gate_blocked_status(
        status,
        step.generation,
        ctx.clock(),
        alias=step.spec.alias,
        candidate=candidate,
        incumbent=str(record["incumbent"]),
        reason=reason,
        detail=detail,
        gate=record,
    )
    await write_status(ctx, step, new)
    if first:
        ctx.post_event(step.body, "Warning", reason, new["message"])
