"""The version cache on its own: LRU bound, single flight, failures not cached."""

from __future__ import annotations

import asyncio
import threading

import pytest

from predictor.versions import VersionCache


def test_least_recently_used_version_is_dropped_first():
    cache: VersionCache[str] = VersionCache(2)
    cache.get("1", lambda: "one")
    cache.get("2", lambda: "two")
    cache.get("1", lambda: "again")  # touches 1
    cache.get("3", lambda: "three")
    assert cache.versions() == ["1", "3"]


def test_concurrent_threads_share_one_load():
    cache: VersionCache[int] = VersionCache(4)
    gate = threading.Event()

    def slow() -> int:
        gate.wait(5)
        return 7

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("5", slow))) for _ in range(8)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert results == [7] * 8
    assert cache.loads == 1


async def test_concurrent_coroutines_share_one_load():
    cache: VersionCache[int] = VersionCache(4)
    results = await asyncio.gather(*(cache.aget("9", lambda: 9) for _ in range(50)))
    assert results == [9] * 50
    assert cache.loads == 1


def test_a_failed_load_is_not_cached_and_is_retried():
    cache: VersionCache[str] = VersionCache(2)

    def broken() -> str:
        raise OSError("down")

    with pytest.raises(OSError):
        cache.get("1", broken)
    assert "1" not in cache
    assert cache.get("1", lambda: "ok") == "ok"
