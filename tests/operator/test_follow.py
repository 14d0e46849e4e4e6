"""btcf_operator.follow.Followers: one follower task per resource, started once, stopped on deletion."""

from __future__ import annotations

import asyncio

from btcf_operator.follow import Followers


async def test_a_resource_gets_one_follower_however_many_events_arrive() -> None:
    followers, started = Followers(), []

    async def follower() -> None:
        started.append(1)
        await asyncio.Event().wait()

    for _ in range(3):
        followers.ensure(("ns", "ma"), follower)
        await asyncio.sleep(0)
    assert started == [1]
    await followers.stop_all()


async def test_stopping_a_follower_cancels_it_and_a_finished_one_is_started_again() -> None:
    followers, runs = Followers(), []
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def once() -> None:
        runs.append(1)

    followers.ensure(("ns", "a"), forever)
    await asyncio.sleep(0)
    await followers.stop(("ns", "a"))
    assert cancelled.is_set()

    followers.ensure(("ns", "b"), once)
    await asyncio.sleep(0)
    followers.ensure(("ns", "b"), once)  # the first run ended (the resource was gone): a new one starts
    await asyncio.sleep(0)
    assert runs == [1, 1]
    await followers.stop_all()
