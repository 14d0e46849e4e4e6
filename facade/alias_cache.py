"""A short-lived cache of alias resolutions, so that a request does not wait for MLflow each time.

The bound is stated and kept: an answer is served for at most ``ttl`` seconds counted from the
moment its MLflow call *started* (the alias may have moved while the answer travelled), so a moved
alias is never served for longer than ``ttl``. A verified MLflow webhook for an alias drops that
alias (and the listing) at once, which makes moves visible sooner; the bound does not rely on it.
``ttl`` 0 turns the cache off. The cache says nothing while MLflow is down: the facade's outage
fallback (the last resolution) is separate and unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class _Entry(Generic[T]):
    value: T
    asked_at: float


@dataclass
class AliasCache(Generic[T]):
    """alias -> resolution, and the model's whole alias listing, each fresh for ``ttl`` seconds."""

    ttl: float
    clock: Callable[[], float] = time.monotonic
    _resolved: dict[str, _Entry[T]] = field(default_factory=dict)
    _listing: _Entry[dict[str, str]] | None = None

    def now(self) -> float:
        """Take this before asking MLflow; pass it to :meth:`put` / :meth:`put_listing`."""
        return self.clock()

    def _fresh(self, entry: _Entry | None) -> bool:
        return entry is not None and self.clock() - entry.asked_at < self.ttl

    def get(self, alias: str) -> T | None:
        entry = self._resolved.get(alias)
        return entry.value if entry is not None and self._fresh(entry) else None

    def put(self, alias: str, value: T, asked_at: float) -> None:
        if self.ttl > 0:
            self._resolved[alias] = _Entry(value, asked_at)

    def get_listing(self) -> dict[str, str] | None:
        return self._listing.value if self._listing is not None and self._fresh(self._listing) else None

    def put_listing(self, aliases: dict[str, str], asked_at: float) -> None:
        if self.ttl > 0:
            self._listing = _Entry(aliases, asked_at)

    def invalidate(self, alias: str) -> None:
        """The alias moved or went away (an MLflow webhook said so)."""
        self._resolved.pop(alias, None)
        self._listing = None
