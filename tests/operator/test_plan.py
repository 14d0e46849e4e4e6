"""What to do next, read from the status: nothing, mark Ready, or roll out."""

from __future__ import annotations

import pytest
from btcf_operator.plan import Action, is_rolling_out, needs_resolving_status, plan


@pytest.mark.parametrize(
    ("status", "generation", "version", "action"),
    [
        ({}, 1, "3", Action.ROLL_OUT),
        ({"phase": "Ready", "resolvedVersion": "3", "observedGeneration": 1}, 1, "3", Action.NOTHING),
        ({"phase": "Ready", "resolvedVersion": "3", "observedGeneration": 1}, 2, "3", Action.MARK_READY),
        ({"phase": "Ready", "resolvedVersion": "3", "observedGeneration": 1}, 1, "4", Action.ROLL_OUT),
        (
            {"phase": "Failed", "failedVersion": "4", "resolvedVersion": "3", "observedGeneration": 1},
            1,
            "4",
            Action.NOTHING,
        ),
        (
            {"phase": "Failed", "failedVersion": "4", "resolvedVersion": "3", "observedGeneration": 1},
            2,
            "4",
            Action.ROLL_OUT,
        ),
        ({"phase": "Failed", "resolvedVersion": "3", "observedGeneration": 1}, 1, "3", Action.MARK_READY),
    ],
)
def test_plan(status: dict, generation: int, version: str, action: Action) -> None:
    assert plan(status, generation, version) is action


@pytest.mark.parametrize(
    ("status", "generation", "resolving"),
    [
        ({}, 1, True),
        ({"phase": "Ready", "observedGeneration": 1}, 2, True),
        ({"phase": "Ready", "observedGeneration": 2}, 2, False),
        ({"phase": "Failed", "observedGeneration": 2}, 2, False),  # a retry, not a new spec
    ],
)
def test_resolving_is_written_for_a_new_resource_or_a_new_spec_only(
    status: dict, generation: int, resolving: bool
) -> None:
    assert needs_resolving_status(status, generation) is resolving


def test_a_change_is_in_progress_only_while_rolling_out_to_a_version() -> None:
    assert is_rolling_out({"phase": "RollingOut", "targetVersion": "4"})
    assert not is_rolling_out({"phase": "RollingOut"})
    assert not is_rolling_out({"phase": "Ready", "targetVersion": "4"})
