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
            line = await asyncio.wait_for(anext(watch.aiter_lines()), 20)
    event = json.loads(line)
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", namespace)
