"""The quality gate's verdict as pure functions: the facade's backtest figures in, a decision out.

Before the operator rolls a newly resolved version out over one already served, the facade
backtests both on the same recent hours that neither was trained on (``GET /evaluation``). Here
those figures become a decision (pinball loss and point MAE each within the spec's ratio of the
served version's) and the ``status.gate`` record the resource carries. No I/O, no clock, no kopf:
the reconcile step fetches the figures and writes what these functions return.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from btcforecast.modelalias import Gate


class Verdict(StrEnum):
    PASSED = "Passed"
    REFUSED = "Refused"
    NO_DATA = "NoData"
    UNAVAILABLE = "Unavailable"


class EvaluationFormatError(ValueError):
    """The facade's answer is not the evaluation it should be."""


@dataclass(frozen=True)
class Scores:
    """One version's figures over the evaluation hours."""

    version: str
    base_date: str | None
    pinball: float
    mae: float


@dataclass(frozen=True)
class Evaluation:
    """Both versions scored on the same hours (``start`` .. ``end``, ``hours`` of them)."""

    candidate: Scores
    incumbent: Scores
    hours: int
    start: str
    end: str


@dataclass(frozen=True)
class Decision:
    passed: bool
    loss_ratio: float | None
    """Candidate pinball / incumbent pinball; None when the incumbent's is 0 and the candidate's is not."""
    mae_ratio: float | None
    failures: tuple[str, ...]
    """Why the candidate was refused, one line per figure over its limit (empty when it passed)."""


def _scores(payload: Mapping[str, Any], side: str) -> Scores:
    raw = payload[side]
    return Scores(
        version=str(raw["version"]),
        base_date=str(raw["base_date"]) if raw.get("base_date") else None,
        pinball=float(raw["pinball"]),
        mae=float(raw["mae"]),
    )


def parse_evaluation(payload: Any) -> Evaluation:
    """The facade's ``/evaluation`` answer as typed figures; EvaluationFormatError when it is not one."""
    try:
        evaluation = Evaluation(
            candidate=_scores(payload, "candidate"),
            incumbent=_scores(payload, "incumbent"),
            hours=int(payload["hours"]),
            start=str(payload["start"]),
            end=str(payload["end"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise EvaluationFormatError(f"the facade's evaluation is unreadable: {type(e).__name__}: {e}") from e
    figures = (evaluation.candidate, evaluation.incumbent)
    if evaluation.hours < 1 or any(not (s.pinball >= 0 and s.mae >= 0) for s in figures):
        raise EvaluationFormatError("the facade's evaluation has no hours or a negative/NaN figure")
    return evaluation


def ratio(new: float, old: float) -> float | None:
    """``new / old``; 1.0 when both are 0; None (unbounded) when only ``old`` is 0."""
    if old > 0:
        return new / old
    return 1.0 if new == 0 else None


def decide(evaluation: Evaluation, gate: Gate) -> Decision:
    """Passed only if the candidate's pinball and MAE are both within the gate's ratios."""
    c, i = evaluation.candidate, evaluation.incumbent
    loss_ratio, mae_ratio = ratio(c.pinball, i.pinball), ratio(c.mae, i.mae)
    failures: list[str] = []
    for name, ratio_, limit, new, old in (
        ("pinball loss", loss_ratio, gate.max_loss_ratio, c.pinball, i.pinball),
        ("MAE", mae_ratio, gate.max_mae_ratio, c.mae, i.mae),
    ):
        if ratio_ is None or ratio_ > limit:
            shown = "unbounded" if ratio_ is None else f"{ratio_:.3f}x"
            failures.append(f"{name} {new:.2f} is {shown} the served version's {old:.2f} (max {limit:g}x)")
    return Decision(not failures, loss_ratio, mae_ratio, tuple(failures))


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _record(candidate: str, incumbent: str, gate: Gate, verdict: Verdict, message: str) -> dict[str, Any]:
    """Every key of ``status.gate``, None where there is no figure (a merge patch then removes it)."""
    return {
        "candidate": candidate,
        "incumbent": incumbent,
        "decision": str(verdict),
        "message": message,
        "requestedHours": gate.hours,
        "hours": None,
        "windowStart": None,
        "windowEnd": None,
        "candidatePinball": None,
        "incumbentPinball": None,
        "lossRatio": None,
        "maxLossRatio": gate.max_loss_ratio,
        "candidateMae": None,
        "incumbentMae": None,
        "maeRatio": None,
        "maxMaeRatio": gate.max_mae_ratio,
        "evaluatedAt": None,
    }


def gate_record(evaluation: Evaluation, gate: Gate, decision: Decision, now: datetime) -> dict[str, Any]:
    """``status.gate`` for an evaluation that reached a verdict: the figures and the decision."""
    verdict = Verdict.PASSED if decision.passed else Verdict.REFUSED
    record = _record(
        evaluation.candidate.version,
        evaluation.incumbent.version,
        gate,
        verdict,
        summary(evaluation, decision),
    )
    record.update(
        hours=evaluation.hours,
        windowStart=evaluation.start,
        windowEnd=evaluation.end,
        candidatePinball=_round(evaluation.candidate.pinball),
        incumbentPinball=_round(evaluation.incumbent.pinball),
        lossRatio=_round(decision.loss_ratio),
        candidateMae=_round(evaluation.candidate.mae),
        incumbentMae=_round(evaluation.incumbent.mae),
        maeRatio=_round(decision.mae_ratio),
        evaluatedAt=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    return record


def no_verdict_record(
    candidate: str, incumbent: str, gate: Gate, verdict: Verdict, detail: str
) -> dict[str, Any]:
    """``status.gate`` when no verdict could be reached (``NoData`` or ``Unavailable``): why, no figures."""
    return _record(candidate, incumbent, gate, verdict, detail)


def summary(evaluation: Evaluation, decision: Decision) -> str:
    """One line: what was compared, on which hours, and the outcome."""
    c, i = evaluation.candidate, evaluation.incumbent
    where = f"{evaluation.hours} h from {evaluation.start} to {evaluation.end}"
    if decision.passed:
        return (
            f"version {c.version} passed against version {i.version} on {where}: pinball "
            f"{c.pinball:.2f} vs {i.pinball:.2f}, MAE {c.mae:.2f} vs {i.mae:.2f}"
        )
    return f"version {c.version} refused against version {i.version} on {where}: " + "; ".join(
        decision.failures
    )
