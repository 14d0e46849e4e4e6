"""The quality gate as pure functions: the spec, the verdict on figures, the status it leaves."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from btcf_operator import gate as g
from btcf_operator.plan import Action, plan
from btcf_operator.spec import SpecError, parse_spec
from btcf_operator.status import Reason, gate_blocked_status, rollout_started_status, status_changed

from btcforecast.modelalias import Gate, GateSpecError, failure_reason, parse_gate

NOW = datetime(2025, 8, 1, 6, 0, tzinfo=UTC)
GATE = Gate(hours=168, max_loss_ratio=1.02, max_mae_ratio=1.02, min_hours=24)


def evaluation(candidate: tuple[float, float], incumbent: tuple[float, float]) -> g.Evaluation:
    """(pinball, MAE) of each version over 168 hours."""
    return g.Evaluation(
        candidate=g.Scores("8", "2025-07-24", *candidate),
        incumbent=g.Scores("5", "2025-04-03", *incumbent),
        hours=168,
        start="2025-07-25T00:00:00Z",
        end="2025-07-31T23:00:00Z",
    )


def facade_answer(**overrides: object) -> dict[str, object]:
    answer: dict[str, object] = {
        "model": "btc-lstm",
        "candidate": {"version": "8", "base_date": "2025-07-24", "pinball": 84.9, "mae": 250.7},
        "incumbent": {"version": "5", "base_date": "2025-04-03", "pinball": 90.5, "mae": 251.9},
        "hours": 168,
        "start": "2025-07-25T00:00:00Z",
        "end": "2025-07-31T23:00:00Z",
    }
    answer.update(overrides)
    return answer


# --- the spec ------------------------------------------------------------------------------------


def test_a_spec_without_gate_has_none() -> None:
    assert parse_gate({"alias": "production"}) is None


def test_an_empty_gate_takes_the_crd_defaults() -> None:
    assert parse_gate({"gate": {}}) == Gate(hours=168, max_loss_ratio=1.02, max_mae_ratio=1.02, min_hours=24)


def test_a_gate_reads_its_camel_case_fields() -> None:
    gate = parse_gate({"gate": {"hours": 72, "maxLossRatio": 1.1, "maxMaeRatio": 1.0, "minHours": 48}})
    assert gate == Gate(hours=72, max_loss_ratio=1.1, max_mae_ratio=1.0, min_hours=48)


@pytest.mark.parametrize("raw", [{"hours": 24, "minHours": 48}, {"maxLossRatio": 0}, {"hours": "many"}, "on"])
def test_an_impossible_gate_is_a_spec_error(raw: object) -> None:
    with pytest.raises(GateSpecError):
        parse_gate({"gate": raw})


def test_parse_spec_carries_the_gate_and_turns_a_bad_one_into_a_spec_error() -> None:
    base = {"registeredModel": "m", "alias": "a", "target": {"kind": "Deployment", "name": "p"}}
    spec = parse_spec({**base, "gate": {"hours": 48}}, default_deadline=300, min_poll_seconds=5)
    assert spec.gate == Gate(hours=48)
    with pytest.raises(SpecError):
        parse_spec({**base, "gate": {"maxMaeRatio": -1}}, default_deadline=300, min_poll_seconds=5)


# --- the verdict ---------------------------------------------------------------------------------


def test_a_candidate_better_on_both_figures_passes() -> None:
    decision = g.decide(evaluation((84.9, 250.7), (90.5, 251.9)), GATE)
    assert decision.passed and decision.failures == ()
    assert decision.loss_ratio == pytest.approx(84.9 / 90.5)
    assert decision.mae_ratio == pytest.approx(250.7 / 251.9)


def test_a_candidate_within_the_ratios_passes_even_if_slightly_worse() -> None:
    assert g.decide(evaluation((101.9, 101.9), (100.0, 100.0)), GATE).passed


def test_exactly_at_the_ratio_passes() -> None:
    assert g.decide(evaluation((102.0, 100.0), (100.0, 100.0)), GATE).passed


def test_a_pinball_over_the_ratio_is_refused_and_says_so() -> None:
    decision = g.decide(evaluation((236.9, 260.7), (84.9, 250.7)), GATE)
    assert not decision.passed
    assert len(decision.failures) == 2
    assert decision.failures[0].startswith("pinball loss 236.90 is 2.790x the served version's 84.90")


def test_a_mae_over_its_ratio_alone_is_refused() -> None:
    decision = g.decide(evaluation((80.0, 270.0), (90.0, 250.0)), GATE)
    assert not decision.passed
    assert [f.split()[0] for f in decision.failures] == ["MAE"]


def test_each_ratio_has_its_own_limit() -> None:
    lenient_mae = Gate(max_loss_ratio=1.0, max_mae_ratio=1.5)
    assert g.decide(evaluation((90.0, 300.0), (90.0, 250.0)), lenient_mae).passed


def test_an_incumbent_with_zero_loss_refuses_any_candidate_with_loss() -> None:
    decision = g.decide(evaluation((1.0, 1.0), (0.0, 0.0)), GATE)
    assert not decision.passed and decision.loss_ratio is None
    assert "unbounded" in decision.failures[0]


def test_ratio_of_two_zeros_is_one() -> None:
    assert g.ratio(0.0, 0.0) == 1.0


# --- the facade's answer --------------------------------------------------------------------------


def test_the_facade_answer_parses_into_figures() -> None:
    parsed = g.parse_evaluation(facade_answer())
    assert parsed.candidate == g.Scores("8", "2025-07-24", 84.9, 250.7)
    assert (parsed.hours, parsed.start, parsed.end) == (168, "2025-07-25T00:00:00Z", "2025-07-31T23:00:00Z")


@pytest.mark.parametrize(
    "broken",
    [
        {"candidate": None},
        {"hours": 0},
        {"incumbent": {"version": "5", "pinball": float("nan"), "mae": 1.0}},
        {"candidate": {"version": "8", "pinball": -1.0, "mae": 1.0}},
    ],
)
def test_an_answer_that_is_not_an_evaluation_is_a_format_error(broken: dict[str, object]) -> None:
    with pytest.raises(g.EvaluationFormatError):
        g.parse_evaluation(facade_answer(**broken))


# --- what the status records ---------------------------------------------------------------------


def test_the_gate_record_holds_the_figures_ratios_and_decision() -> None:
    e = evaluation((236.91, 260.71), (84.9, 250.7))
    record = g.gate_record(e, GATE, g.decide(e, GATE), NOW)
    assert record == {
        "candidate": "8",
        "incumbent": "5",
        "decision": "Refused",
        "message": record["message"],
        "requestedHours": 168,
        "hours": 168,
        "windowStart": "2025-07-25T00:00:00Z",
        "windowEnd": "2025-07-31T23:00:00Z",
        "candidatePinball": 236.91,
        "incumbentPinball": 84.9,
        "lossRatio": round(236.91 / 84.9, 4),
        "maxLossRatio": 1.02,
        "candidateMae": 260.71,
        "incumbentMae": 250.7,
        "maeRatio": round(260.71 / 250.7, 4),
        "maxMaeRatio": 1.02,
        "evaluatedAt": "2025-08-01T06:00:00Z",
    }
    assert record["message"].startswith("version 8 refused against version 5 on 168 h from 2025-07-25")


def test_a_no_verdict_record_has_the_same_keys_with_no_figures() -> None:
    e = evaluation((1.0, 1.0), (1.0, 1.0))
    full = g.gate_record(e, GATE, g.decide(e, GATE), NOW)
    empty = g.no_verdict_record("8", "5", GATE, g.Verdict.NO_DATA, "only 12 hours")
    assert empty.keys() == full.keys()  # a merge patch then clears the figures of an older verdict
    assert (empty["decision"], empty["message"], empty["lossRatio"]) == ("NoData", "only 12 hours", None)


def blocked(reason: Reason, gate: dict[str, object], generation: int = 3) -> dict[str, object]:
    return gate_blocked_status(
        {},
        generation,
        NOW,
        alias="staging",
        candidate="8",
        incumbent="5",
        reason=reason,
        detail="why",
        gate=gate,
    )


def test_a_refused_version_is_blocked_and_the_incumbent_stays_resolved_and_ready() -> None:
    status = blocked(Reason.QUALITY_GATE, {"candidate": "8", "decision": "Refused"})
    assert (status["phase"], status["resolvedVersion"]) == ("Blocked", "5")
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions == {
        "Resolved": ("True", "AliasResolved"),
        "RolledOut": ("False", "QualityGate"),
        "Ready": ("True", "Serving"),
    }
    assert status["message"] == "version 8 held back (QualityGate: why); still serving version 5"
    assert failure_reason(status) == "QualityGate"


def test_no_data_is_not_a_verdict_so_rolled_out_is_unknown() -> None:
    status = blocked(Reason.GATE_NO_DATA, {"candidate": "8", "decision": "NoData"})
    rolled_out = next(c for c in status["conditions"] if c["type"] == "RolledOut")
    assert (rolled_out["status"], rolled_out["reason"]) == ("Unknown", "GateNoData")
    assert failure_reason(status) == "GateNoData"


def test_a_refused_version_is_not_evaluated_again_for_the_same_spec() -> None:
    status = blocked(Reason.QUALITY_GATE, {"candidate": "8", "decision": "Refused"})
    assert plan(status, 3, "8") is Action.NOTHING


def test_a_moved_alias_or_a_changed_spec_evaluates_again() -> None:
    status = blocked(Reason.QUALITY_GATE, {"candidate": "8", "decision": "Refused"})
    assert plan(status, 3, "9") is Action.ROLL_OUT
    assert plan(status, 4, "8") is Action.ROLL_OUT


def test_an_alias_moved_back_to_the_served_version_is_ready_again() -> None:
    status = blocked(Reason.QUALITY_GATE, {"candidate": "8", "decision": "Refused"})
    assert plan(status, 3, "5") is Action.MARK_READY


@pytest.mark.parametrize(
    "reason,decision", [(Reason.GATE_NO_DATA, "NoData"), (Reason.GATE_UNAVAILABLE, "Unavailable")]
)
def test_a_gate_without_verdict_is_asked_again(reason: Reason, decision: str) -> None:
    status = blocked(reason, {"candidate": "8", "decision": decision})
    assert plan(status, 3, "8") is Action.ROLL_OUT


def test_an_unchanged_gate_record_with_cleared_figures_is_no_change() -> None:
    record = g.no_verdict_record("8", "5", GATE, g.Verdict.NO_DATA, "only 12 hours")
    stored = {"gate": {k: v for k, v in record.items() if v is not None}}  # what the API server keeps
    assert not status_changed(stored, {"gate": record})
    assert status_changed(stored, {"gate": {**record, "message": "only 13 hours"}})


def test_the_rollout_status_keeps_the_gate_record_that_let_it_through() -> None:
    e = evaluation((84.9, 250.7), (90.5, 251.9))
    record = g.gate_record(e, GATE, g.decide(e, GATE), NOW)
    status = rollout_started_status(
        {},
        3,
        NOW,
        alias="staging",
        target_version="8",
        previous_version="5",
        gate=record,
    )
    assert status["gate"]["decision"] == "Passed"
    assert "gate" not in rollout_started_status(
        {}, 3, NOW, alias="a", target_version="8", previous_version=None
    )
