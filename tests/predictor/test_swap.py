"""Reload targets and the swap on their own, with plain stand-ins for MLflow and the loader."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from btcforecast.registry import AliasNotFoundError, ResolvedVersion
from predictor.reload import Serving, Swapper, reload_target
from predictor.versions import VersionCache

ALIASES = {"production": "2", "backtest_20250327": "1"}


def resolve(alias, version):
    if version is None:
        if alias not in ALIASES:
            raise AliasNotFoundError(alias)
        version = ALIASES[alias]
    return ResolvedVersion(name="m", version=version, alias=alias, run_id=None, source="")


def load(ref):
    return SimpleNamespace(version=ref.version, model=f"model-{ref.version}")


def serving(version, alias=None, pinned=False):
    return Serving(SimpleNamespace(version=version), alias, pinned)


@pytest.mark.parametrize(
    ("asked", "live", "defaults", "target"),
    [
        (("20250327", None), None, ("production", None), ("backtest_20250327", None)),
        ((None, "3"), serving("2", "production"), ("production", None), (None, "3")),
        ((None, None), serving("2", "staging"), ("production", None), ("staging", None)),
        ((None, None), serving("3", "production", pinned=True), ("production", None), ("production", "3")),
        ((None, None), None, ("production", "4"), ("production", "4")),
    ],
)
def test_reload_target(asked, live, defaults, target):
    assert reload_target(*asked, live, *defaults) == target


async def test_a_request_keeps_the_version_it_started_with_across_a_swap():
    swapper = Swapper(resolve, load, VersionCache(4))
    swapper.load_initial("production", None)
    started = await swapper.select(None, None)  # what a request holds for its whole life
    await swapper.reload("backtest_20250327", None)
    assert started.loaded.model == "model-2"
    assert (await swapper.select(None, None)).loaded.model == "model-1"


async def test_a_failed_reload_leaves_the_live_version():
    swapper = Swapper(resolve, load, VersionCache(4))
    swapper.load_initial("production", None)
    with pytest.raises(AliasNotFoundError):
        await swapper.reload("nosuch", None)
    assert swapper.live.version == "2"


async def test_the_start_up_load_does_not_replace_a_reload_that_won_the_race():
    swapper = Swapper(resolve, load, VersionCache(4))
    await swapper.reload("backtest_20250327", None)
    swapper.load_initial("production", None)
    assert swapper.live.version == "1"
