"""A bounded LRU cache of loaded model versions, loading each version at most once at a time.

Backtests ask for many versions; keeping the recent ones loaded means a request for a version
costs one forward pass, not a download. Concurrent requests for a version that is not loaded yet
share one load (single flight) instead of each downloading it. The cache is plain code, used both
from the event loop (``aget``) and from the start-up loader thread (``get``).
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")


class VersionCache(Generic[T]):
    """Up to ``capacity`` values by version; the least recently used one is dropped first."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._items: OrderedDict[str, T] = OrderedDict()
        self._loading: dict[str, Future[T]] = {}
        self._lock = threading.Lock()
        self.loads = 0  # how many loads ran: what single flight keeps low

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, version: object) -> bool:
        return version in self._items

    def versions(self) -> list[str]:
        """Cached versions, least recently used first."""
        with self._lock:
            return list(self._items)

    def peek(self, version: str) -> T | None:
        """The cached value, marked as recently used; None when absent (never loads)."""
        with self._lock:
            value = self._items.get(version)
            if value is not None:
                self._items.move_to_end(version)
            return value

    def put(self, version: str, value: T) -> None:
        with self._lock:
            self._store(version, value)

    def _store(self, version: str, value: T) -> None:
        self._items[version] = value
        self._items.move_to_end(version)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def _claim(self, version: str) -> tuple[T | None, Future[T] | None, bool]:
        """(value, None, False) if cached; else the load's future and whether the caller runs it."""
        with self._lock:
            value = self._items.get(version)
            if value is not None:
                self._items.move_to_end(version)
                return value, None, False
            future = self._loading.get(version)
            if future is not None:
                return None, future, False
            future = Future()
            self._loading[version] = future
            self.loads += 1
            return None, future, True

    def _finish(self, version: str, future: Future[T], load: Callable[[], T]) -> None:
        try:
            value = load()
        except BaseException as e:
            with self._lock:
                self._loading.pop(version, None)
            future.set_exception(e)
            return
        with self._lock:
            self._store(version, value)
            self._loading.pop(version, None)
        future.set_result(value)

    def get(self, version: str, load: Callable[[], T]) -> T:
        """The cached value, or ``load()``'s result (run once however many callers wait). Blocking."""
        value, future, owner = self._claim(version)
        if value is not None:
            return value
        assert future is not None
        if owner:
            self._finish(version, future, load)
        return future.result()

    async def aget(self, version: str, load: Callable[[], T]) -> T:
        """As :meth:`get`, for the event loop: the load runs in a worker thread; waiters hold no thread."""
        value, future, owner = self._claim(version)
        if value is not None:
            return value
        assert future is not None
        if owner:
            await asyncio.to_thread(self._finish, version, future, load)
        return await asyncio.wrap_future(future)
