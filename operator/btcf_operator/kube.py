"""Thin calls to the Kubernetes API through the official client, as plain dicts.

The official client is synchronous; every call runs in a worker thread so the operator's event loop
never blocks. Objects travel as dicts (the shapes the decisions module reads) rather than generated
models, and errors become three exceptions the reconciler understands: not found, conflict (a
failed JSON-patch ``test``), and unavailable.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Mapping
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from btcforecast.errors import DependencyUnavailable

GROUP = "serving.btcforecast.io"
VERSION = "v1alpha1"
PLURAL = "modelaliases"

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

_TARGET_PATHS = {
    "InferenceService": "/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices/{name}",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
}


class KubeError(Exception):
    """A Kubernetes API call failed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class NotFound(KubeError):
    """The object (or its kind) does not exist."""


class Conflict(KubeError):
    """The object changed under us (a failed patch test or resourceVersion check)."""


class KubeUnavailable(DependencyUnavailable):
    """The API server cannot be reached."""


def api_client(kubeconfig: str | None = None) -> k8s.ApiClient:
    """An API client for in-cluster credentials, else the kubeconfig (``KUBECONFIG`` if not given).

    The path is read at call time on purpose: the client library reads ``KUBECONFIG`` once at import.
    """
    try:
        k8s_config.load_incluster_config()
        return k8s.ApiClient()
    except ConfigException:
        pass
    path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    return k8s_config.new_client_from_config(config_file=path)


class KubeApi:
    """The few calls the operator makes, each returning plain JSON."""

    def __init__(self, client: k8s.ApiClient, timeout: float = 10.0) -> None:
        self.client = client
        self.timeout = timeout

    def close(self) -> None:
        self.client.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str | None = None,
        query: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        return await asyncio.to_thread(self._request, method, path, body, content_type, query)

    def _request(
        self, method: str, path: str, body: Any, content_type: str | None, query: Mapping[str, str] | None
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        try:
            _, url, headers, body, _ = self.client.param_serialize(
                method=method,
                resource_path=path,
                query_params=list((query or {}).items()) or None,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self.client.call_api(
                method, url, header_params=headers, body=body, _request_timeout=self.timeout
            )
            data = response.read()
        except ApiException as e:
            raise _api_error(e.status or 500, e.body or str(e)) from e
        except Exception as e:  # urllib3 connection errors and timeouts
            raise KubeUnavailable(f"Kubernetes API unreachable: {e}") from e
        text = data.decode() if isinstance(data, bytes) else str(data or "")
        if response.status >= 400:
            raise _api_error(response.status, text)
        return json.loads(text) if text else {}

    # --- ModelAlias ----------------------------------------------------------------------------

    @staticmethod
    def modelalias_path(namespace: str, name: str) -> str:
        return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}"

    async def get_modelalias(self, namespace: str, name: str) -> dict[str, Any]:
        return await self.request("GET", self.modelalias_path(namespace, name))

    async def patch_modelalias_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch the status subresource (``None`` values remove fields)."""
        path = self.modelalias_path(namespace, name) + "/status"
        return await self.request("PATCH", path, body={"status": dict(status)}, content_type=MERGE_PATCH)

    async def patch_modelalias_spec(
        self, namespace: str, name: str, spec: Mapping[str, Any]
    ) -> dict[str, Any]:
        path = self.modelalias_path(namespace, name)
        return await self.request("PATCH", path, body={"spec": dict(spec)}, content_type=MERGE_PATCH)

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


def _api_error(status: int, body: str) -> KubeError:
    try:
        message = json.loads(body).get("message") or body
    except (ValueError, AttributeError):
        message = body
    message = str(message)[:500]
    if status == 404:
        return NotFound(status, message)
    if status in (409, 422):
        return Conflict(status, message)
    if status >= 500:
        return KubeError(status, message)
    return KubeError(status, message)
