"""The operator's Kubernetes calls: the core's ModelAlias client plus targets, pods and secrets.

Transport, errors and the ModelAlias calls live in the core (:mod:`btcforecast.kube`,
:mod:`btcforecast.modelalias`), shared with the facade's cluster-mode ``/reload``; what only the
operator does (patch a rollout target, list a target's pods, read the reload-token Secret) is here.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from btcforecast.kube import JSON_PATCH, NotFound
from btcforecast.modelalias import ModelAliasApi

_TARGET_PATHS = {
    "InferenceService": "/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices/{name}",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
}


class KubeApi(ModelAliasApi):
    """The few calls the operator makes, each returning plain JSON."""

    # --- targets ---------------------------------------------------------------------------------

    @staticmethod
    def target_path(kind: str, namespace: str, name: str) -> str:
        return _TARGET_PATHS[kind].format(ns=namespace, name=name)

    async def get_target(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return await self.request("GET", self.target_path(kind, namespace, name))

    async def json_patch_target(
        self, kind: str, namespace: str, name: str, ops: list[dict[str, Any]]
    ) -> dict[str, Any]:
        return await self.request(
            "PATCH", self.target_path(kind, namespace, name), body=ops, content_type=JSON_PATCH
        )

    # --- pods and secrets ------------------------------------------------------------------------

    async def list_pods(self, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        result = await self.request(
            "GET", f"/api/v1/namespaces/{namespace}/pods", query={"labelSelector": selector}
        )
        return list(result.get("items") or [])

    async def read_secret_value(self, namespace: str, name: str, key: str) -> str:
        secret = await self.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        if key in (secret.get("stringData") or {}):
            return str(secret["stringData"][key])
        data = secret.get("data") or {}
        if key not in data:
            raise NotFound(404, f"secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(data[key]).decode()
