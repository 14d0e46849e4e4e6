"""The status builders: each state's phase, fields and conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from btcf_operator.plan import is_rolling_out
from btcf_operator.status import (
    Reason,
    condition_reason,
    merge_conditions,
    ready_status,
    resolving_status,
    rollout_failed_status,
    rollout_started_status,
    status_changed,
    target_problem_status,
)
from btcf_operator.timing import format_time

NOW = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)


def failed(previous: dict, generation: int, now: datetime) -> dict:
    return rollout_failed_status(
        previous,
        generation,
        now,
        alias="production",
        failed_version="4",
        restored_version="3",
        reason=Reason.DEADLINE_EXCEEDED,
        detail="late",
    )


def test_transition_time_changes_only_when_a_condition_changes_status() -> None:
    first = ready_status({}, 1, NOW, alias="production", version="3", previous_version=None)
    later = NOW + timedelta(minutes=5)
    again = ready_status(first, 2, later, alias="production", version="3", previous_version=None)
    assert merge_conditions(first["conditions"], [], later) == first["conditions"]
    assert [c["lastTransitionTime"] for c in again["conditions"]] == [format_time(NOW)] * 3
    times = {c["type"]: c["lastTransitionTime"] for c in failed(again, 2, later)["conditions"]}
    assert times == {"Resolved": format_time(NOW), "RolledOut": format_time(later), "Ready": format_time(NOW)}


def test_a_failed_rollout_status_names_the_restored_and_the_failed_version() -> None:
    status = failed({}, 1, NOW)
    assert (status["phase"], status["resolvedVersion"], status["failedVersion"]) == ("Failed", "3", "4")
    assert "rolled back to version 3" in status["message"]
    assert condition_reason(status, "RolledOut") == "DeadlineExceeded"


def test_a_rollout_started_status_records_what_a_restarted_operator_needs() -> None:
    status = rollout_started_status({}, 1, NOW, alias="production", target_version="4", previous_version="3")
    assert is_rolling_out(status)
    assert (status["targetVersion"], status["previousVersion"], status["rolloutStartedAt"]) == (
        "4",
        "3",
        format_time(NOW),
    )


def test_the_strategy_names_the_change_in_the_message() -> None:
    status = rollout_started_status(
        {}, 1, NOW, alias="production", target_version="4", previous_version=None, how="hot-reloading"
    )
    assert status["message"] == "hot-reloading version 4 (from none)"


def test_a_resolving_status_keeps_what_is_served_and_marks_resolution_unknown() -> None:
    ready = ready_status({}, 1, NOW, alias="production", version="3", previous_version=None)
    status = {**ready, **resolving_status(ready, 2, NOW, model="btc-lstm", alias="staging")}
    assert (status["phase"], status["observedGeneration"], status["resolvedVersion"]) == ("Resolving", 2, "3")
    resolved = next(c for c in status["conditions"] if c["type"] == "Resolved")
    assert (resolved["status"], resolved["reason"]) == ("Unknown", "Resolving")


def test_a_target_problem_fails_without_marking_a_version_bad() -> None:
    status = target_problem_status({}, 1, NOW, reason=Reason.INVALID_TARGET, detail="no containers")
    assert (status["phase"], status["message"]) == ("Failed", "no containers")
    assert "failedVersion" not in status
    assert condition_reason(status, "Ready") == "InvalidTarget"


def test_a_status_equal_but_for_cleared_fields_is_no_change() -> None:
    assert not status_changed({"phase": "Ready"}, {"phase": "Ready", "targetVersion": None})
    assert status_changed({"phase": "Ready"}, {"phase": "Failed"})
