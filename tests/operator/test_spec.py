"""The ModelAlias spec as typed values."""

from __future__ import annotations

import pytest
from btcf_operator.spec import Spec, SpecError, Strategy, TargetKind, parse_spec

BASE = {"registeredModel": "btc-lstm", "alias": "production", "target": {"kind": "Deployment", "name": "p"}}


def parse(spec: dict) -> Spec:
    return parse_spec(spec, default_deadline=300, min_poll_seconds=5)


def test_defaults_fill_what_the_spec_leaves_out() -> None:
    spec = parse(BASE)
    assert (spec.target_kind, spec.strategy, spec.poll_seconds) == (
        TargetKind.DEPLOYMENT,
        Strategy.ROLLOUT,
        60,
    )
    assert (spec.rollout_deadline_seconds, spec.reload_token_secret, spec.gate) == (300, None, None)


def test_poll_seconds_are_floored_and_the_secret_reference_read() -> None:
    spec = parse(
        {**BASE, "pollSeconds": 1, "reloadTokenSecret": {"name": "s", "key": "k"}, "strategy": "HotReload"}
    )
    assert (spec.poll_seconds, spec.reload_token_secret, spec.strategy) == (
        5,
        ("s", "k"),
        Strategy.HOT_RELOAD,
    )


@pytest.mark.parametrize(
    "spec",
    [
        {"alias": "production", "target": {"kind": "Deployment", "name": "p"}},
        {**BASE, "target": {"kind": "StatefulSet", "name": "p"}},
        {**BASE, "strategy": "Blue/Green"},
        {**BASE, "alias": ""},
    ],
)
def test_a_spec_the_operator_cannot_act_on_is_a_spec_error(spec: dict) -> None:
    with pytest.raises(SpecError):
        parse(spec)
