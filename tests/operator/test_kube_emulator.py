"""The API emulator's namespace watch, which kopf follows to learn which namespaces to serve."""

from __future__ import annotations

import asyncio
import json

import httpx
from btcf_operator.kube import KubeApi

from tests.operator import objects as o
from tests.operator.kube_emulator import EmulatorThread


async def test_a_namespace_watch_announces_a_namespace_when_its_first_object_is_created(
    kube_emulator: EmulatorThread, kube: KubeApi, namespace: str
) -> None:
    async with httpx.AsyncClient(base_url=kube_emulator.url, timeout=30) as client:
        listed = (await client.get("/api/v1/namespaces")).json()
        assert namespace not in {n["metadata"]["name"] for n in listed["items"]}
        params = {"watch": "true", "timeoutSeconds": "20"}
        async with client.stream("GET", "/api/v1/namespaces", params=params) as watch:
            await o.create(kube, namespace, "deployments", o.deployment("predictor"))
            events = watch.aiter_lines()
            event = json.loads(await asyncio.wait_for(anext(events), 20))
            while event["object"]["metadata"]["name"] != namespace:  # those there when it started
                event = json.loads(await asyncio.wait_for(anext(events), 20))
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", namespace)


async def test_a_namespace_that_appeared_between_the_list_and_the_watch_is_announced_at_once(
    kube_emulator: EmulatorThread, kube: KubeApi, namespace: str
) -> None:
    async with httpx.AsyncClient(base_url=kube_emulator.url, timeout=30) as client:
        listed = (await client.get("/api/v1/namespaces")).json()
        await o.create(kube, namespace, "deployments", o.deployment("predictor"))
        params = {
            "watch": "true",
            "timeoutSeconds": "1",
            "resourceVersion": listed["metadata"]["resourceVersion"],
        }
        async with client.stream("GET", "/api/v1/namespaces", params=params) as watch:
            announced = [json.loads(line) async for line in watch.aiter_lines()]
    assert ("ADDED", namespace) in {(e["type"], e["object"]["metadata"]["name"]) for e in announced}
