"""btcforecast.modelalias.change_in_progress: when moving a ModelAlias would overtake a change under way."""

from __future__ import annotations

from typing import Any

import pytest

from btcforecast.modelalias import change_in_progress


def modelalias(alias: str, generation: int, status: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"generation": generation}, "spec": {"alias": alias}, "status": status}


@pytest.mark.parametrize(
    ("phase", "observed"),
    [("Resolving", 4), ("RollingOut", 4), ("Ready", 3), ("Failed", 3)],
)
def test_another_alias_being_resolved_rolled_out_or_not_yet_seen_is_busy(phase: str, observed: int) -> None:
    busy = change_in_progress(modelalias("staging", 4, {"phase": phase, "observedGeneration": observed}), "x")
    assert busy is not None and "'staging'" in busy


@pytest.mark.parametrize("phase", ["Ready", "Failed"])
def test_a_settled_resource_is_free_to_move(phase: str) -> None:
    assert (
        change_in_progress(modelalias("staging", 4, {"phase": phase, "observedGeneration": 4}), "x") is None
    )


def test_the_alias_already_under_way_is_joined_not_refused() -> None:
    status = {"phase": "RollingOut", "observedGeneration": 4}
    assert change_in_progress(modelalias("staging", 4, status), "staging") is None


def test_a_resource_the_operator_never_answered_is_free_to_move() -> None:
    assert change_in_progress(modelalias("production", 1, {}), "staging") is None
