"""Swapping the live model version without dropping or mixing requests.

A new version is loaded beside the live one (the old keeps serving meanwhile), then made live by
one reference assignment. A request takes the live reference once when it starts and uses that
object to the end, so it is answered wholly by the version it started with even if a swap happens
half-way; the old version is freed when its last request lets go. A failed reload (unknown alias,
MLflow down, bad files) raises before the assignment, so the old version keeps serving.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass

from btcforecast.alias_names import normalize_alias
from btcforecast.registry import LoadedModel, ResolvedVersion
from predictor.versions import VersionCache

Resolve = Callable[[str | None, str | None], ResolvedVersion]
"""(alias, version) -> the one version to load; raises the registry's not-found/unavailable errors."""
Load = Callable[[ResolvedVersion], LoadedModel]
"""Fetch the files of a resolved version and build (and warm up) the module."""


class NothingLive(RuntimeError):
    """A request for the live version before any version was loaded."""


@dataclass(frozen=True)
class Serving:
    """A loaded version and the alias it is served under (None when asked for by version only)."""

    loaded: LoadedModel
    alias: str | None
    pinned: bool = False  # chosen by version: a bare reload keeps the version instead of re-resolving

    @property
    def version(self) -> str:
        return self.loaded.version


@dataclass(frozen=True)
class ReloadResult:
    current: Serving
    previous: Serving | None
    was_cached: bool


def reload_target(
    alias: str | None,
    version: str | None,
    live: Serving | None,
    default_alias: str,
    default_version: str | None,
) -> tuple[str | None, str | None]:
    """Which (alias, version) a reload means: what was asked, else what is live, else the defaults."""
    if alias is not None:
        alias = normalize_alias(alias)
    if alias is not None or version is not None:
        return alias, version
    if live is not None:
        return live.alias, (live.version if live.pinned or live.alias is None else None)
    return default_alias, default_version


class Swapper:
    """Holds the live version; loads others through the shared version cache."""

    def __init__(self, resolve: Resolve, load: Load, cache: VersionCache[LoadedModel]) -> None:
        self._resolve = resolve
        self._load = load
        self.cache = cache
        self.live: Serving | None = None
        self._swap_lock = threading.Lock()
        self._reload_lock = asyncio.Lock()

    def _swap(self, new: Serving, only_if_empty: bool = False) -> Serving | None:
        with self._swap_lock:
            previous = self.live
            if only_if_empty and previous is not None:
                return previous
            self.live = new  # the one assignment that makes it live
            return previous

    def _fetch(self, ref: ResolvedVersion) -> LoadedModel:
        return self.cache.get(ref.version, lambda: self._load(ref))

    def load_initial(self, alias: str | None, version: str | None) -> Serving:
        """Blocking start-up load; does not replace a version a reload made live meanwhile."""
        ref = self._resolve(alias, version)
        serving = Serving(self._fetch(ref), alias, pinned=version is not None)
        previous = self._swap(serving, only_if_empty=True)
        return previous or serving

    async def select(self, alias: str | None, version: str | None) -> Serving:
        """The version a request names, from the cache when possible; the live one if it names none.

        A version that is cached is served without asking MLflow; an alias is always resolved, so
        a moved alias is followed at once.
        """
        live = self.live
        if alias is None and version is None:
            if live is None:
                raise NothingLive("no model version is live yet")
            return live
        if version is not None:
            if live is not None and live.version == version:
                return Serving(live.loaded, alias or live.alias)
            cached = self.cache.peek(version)
            if cached is not None:
                return Serving(cached, alias)
        ref = await asyncio.to_thread(self._resolve, alias, version)
        if live is not None and live.version == ref.version:
            return Serving(live.loaded, alias)
        loaded = await self.cache.aget(ref.version, lambda: self._load(ref))
        return Serving(loaded, alias)

    async def reload(self, alias: str | None, version: str | None) -> ReloadResult:
        """Resolve, load beside the live version, swap. Raises (and changes nothing) on failure."""
        async with self._reload_lock:
            if version is not None and self.cache.peek(version) is not None:
                loaded, was_cached = self.cache.peek(version), True
            else:
                ref = await asyncio.to_thread(self._resolve, alias, version)
                was_cached = ref.version in self.cache
                loaded = await self.cache.aget(ref.version, lambda: self._load(ref))
            assert loaded is not None
            current = Serving(loaded, alias, pinned=version is not None)
            previous = self._swap(current)
            return ReloadResult(current=current, previous=previous, was_cached=was_cached)
