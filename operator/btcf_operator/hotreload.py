"""Hot reload: swap the model version in place on every ready predictor pod, or on none.

Each pod's reload endpoint (``POST /v2/models/<model>/reload?version=V``, bearer token) loads the
version and answers with the version it now serves. A pod that fails is retried; if one keeps
failing, the pods that may have moved are sent back to the previous version so the fleet never
stays split between two versions. A pod that certainly did not move (it could not be reached, or
refused the reload) still serves the previous version and is left alone: sending it back would
fail the same way and turn a clean rollback into a failed one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

VERSION_KEYS = ("model_version", "version")


class ReloadError(Exception):
    """One pod did not load the version (HTTP error, refused, or reported another version).

    ``untouched``: the pod certainly still serves what it served (no connection, or an error answer).
    """

    def __init__(self, message: str, *, untouched: bool = False) -> None:
        super().__init__(message)
        self.untouched = untouched


@dataclass(frozen=True)
class ReloadOptions:
    model_name: str
    token: str | None
    retries: int = 3
    retry_delay: float = 1.0


@dataclass
class ReloadOutcome:
    ok: bool
    version: str
    reloaded: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    untouched: list[str] = field(default_factory=list)
    rolled_back: bool = False
    rollback_failures: dict[str, str] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        if self.ok:
            return f"{len(self.reloaded)} pods serve version {self.version}"
        failed = "; ".join(f"{pod}: {why}" for pod, why in sorted(self.failures.items()))
        return f"{len(self.failures)} of {len(self.failures) + len(self.reloaded)} pods failed ({failed})"


def reported_version(payload: object) -> str | None:
    """The version a predictor says it serves, from its JSON answer."""
    if isinstance(payload, Mapping):
        for key in VERSION_KEYS:
            if payload.get(key) is not None:
                return str(payload[key])
    return None


async def reload_pod(http: httpx.AsyncClient, base_url: str, version: str, options: ReloadOptions) -> str:
    """Ask one pod to serve ``version``; return what it reports, or raise ReloadError."""
    headers = {"Authorization": f"Bearer {options.token}"} if options.token else {}
    url = f"{base_url}/v2/models/{options.model_name}/reload"
    try:
        response = await http.post(url, params={"version": version}, headers=headers)
    except httpx.HTTPError as e:  # a timeout may come after the pod switched; a refused connection not
        untouched = isinstance(e, httpx.ConnectError | httpx.ConnectTimeout)
        raise ReloadError(f"{type(e).__name__}: {e}", untouched=untouched) from e
    if response.status_code >= 400:
        raise ReloadError(f"HTTP {response.status_code}: {response.text[:200]}", untouched=True)
    try:
        live = reported_version(response.json())
    except ValueError as e:
        raise ReloadError(f"answer is not JSON: {response.text[:200]}") from e
    if live != version:
        raise ReloadError(f"reports version {live!r} instead of {version!r}")
    return live


async def reload_with_retries(
    http: httpx.AsyncClient, base_url: str, version: str, options: ReloadOptions
) -> str:
    last: ReloadError | None = None
    for attempt in range(options.retries):
        if attempt:
            await asyncio.sleep(options.retry_delay)
        try:
            return await reload_pod(http, base_url, version, options)
        except ReloadError as e:
            last = e
    assert last is not None
    raise last


async def reload_all(
    http: httpx.AsyncClient, pods: Mapping[str, str], version: str, options: ReloadOptions
) -> ReloadOutcome:
    """Reload every pod (name -> base URL) concurrently, each with its own retries."""
    names = sorted(pods)
    results = await asyncio.gather(
        *(reload_with_retries(http, pods[name], version, options) for name in names), return_exceptions=True
    )
    outcome = ReloadOutcome(ok=True, version=version)
    for name, result in zip(names, results, strict=True):
        if isinstance(result, ReloadError):
            outcome.failures[name] = str(result)
            if result.untouched:
                outcome.untouched.append(name)
        elif isinstance(result, BaseException):
            raise result
        else:
            outcome.reloaded.append(name)
    outcome.ok = not outcome.failures
    return outcome


async def hot_reload(
    http: httpx.AsyncClient,
    pods: Mapping[str, str],
    version: str,
    previous: str | None,
    options: ReloadOptions,
) -> ReloadOutcome:
    """All pods to ``version``; if any keeps failing, every pod that may have moved back to ``previous``."""
    outcome = await reload_all(http, pods, version, options)
    if outcome.ok or previous is None:
        return outcome
    moved = {name: url for name, url in pods.items() if name not in outcome.untouched}
    back = await reload_all(http, moved, previous, options)
    outcome.rolled_back = True
    outcome.rollback_failures = back.failures
    return outcome
