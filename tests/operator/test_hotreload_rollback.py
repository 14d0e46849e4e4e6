"""btcf_operator.hotreload.hot_reload: which pods are sent back when one cannot take the new version."""

from __future__ import annotations

import httpx
from btcf_operator.hotreload import ReloadOptions, hot_reload

OPTIONS = ReloadOptions(model_name="btc-lstm", token=None, retries=2, retry_delay=0)
PODS = {"a": "http://pod-a", "b": "http://pod-b"}


def fleet(broken: dict[str, Exception]) -> tuple[httpx.AsyncClient, list[tuple[str, str]]]:
    """Pods that answer with the version asked for, except ``broken`` ones, which raise; and a call log."""
    calls: list[tuple[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        pod, version = request.url.host.removeprefix("pod-"), request.url.params["version"]
        calls.append((pod, version))
        if pod in broken:
            raise broken[pod]
        return httpx.Response(200, json={"model_version": version})

    return httpx.AsyncClient(transport=httpx.MockTransport(answer)), calls


async def test_a_pod_that_cannot_be_reached_is_left_alone_and_the_rollback_is_clean() -> None:
    http, calls = fleet({"b": httpx.ConnectError("refused")})
    async with http:
        outcome = await hot_reload(http, PODS, "3", "2", OPTIONS)

    assert (outcome.ok, outcome.rolled_back, outcome.rollback_failures) == (False, True, {})
    assert ("a", "2") in calls and ("b", "2") not in calls


async def test_a_pod_that_timed_out_may_have_moved_and_is_sent_back_too() -> None:
    http, calls = fleet({"b": httpx.ReadTimeout("slow")})
    async with http:
        outcome = await hot_reload(http, PODS, "3", "2", OPTIONS)

    assert outcome.rolled_back and ("b", "2") in calls
    assert set(outcome.rollback_failures) == {"b"}
