"""Thin async calls to the Kubernetes API through the official client, as plain dicts.

Shared by the operator (which builds its rollout calls on :class:`KubeClient`) and the facade's
cluster-mode ``/reload`` (through :mod:`btcforecast.modelalias`). The official client is
synchronous; every call runs in a worker thread so an event loop never blocks. Objects travel as
dicts rather than generated models, and errors become a few exceptions callers can act on: not
found, conflict (a failed JSON-patch ``test``), any other refusal, and unreachable.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from btcforecast.errors import Unavailable

if TYPE_CHECKING:  # the client is imported where it is used: local-mode processes never load it
    from kubernetes import client as k8s

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


class KubeError(Exception):
    """A Kubernetes API call was refused (``status`` is the HTTP status)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class NotFound(KubeError):
    """The object (or its kind) does not exist."""


class Conflict(KubeError):
    """The object changed under us (a failed patch test or resourceVersion check)."""


class KubeUnavailable(Unavailable):
    """The API server cannot be reached, or there are no credentials to reach it with."""


def api_client(kubeconfig: str | None = None) -> k8s.ApiClient:
    """An API client for in-cluster credentials, else the kubeconfig (``KUBECONFIG`` if not given).

    The path is read at call time on purpose: the client library reads ``KUBECONFIG`` once at import.
    Raises :class:`KubeUnavailable` when neither gives credentials.
    """
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config
    from kubernetes.config.config_exception import ConfigException

    try:
        k8s_config.load_incluster_config()
        return k8s.ApiClient()
    except ConfigException:
        pass
    path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    try:
        return k8s_config.new_client_from_config(config_file=path)
    except (ConfigException, OSError) as e:
        raise KubeUnavailable(f"no Kubernetes credentials (in-cluster or kubeconfig {path}): {e}") from e


class KubeClient:
    """``request()`` any API path; subclasses add the named calls they make."""

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
        from kubernetes.client.exceptions import ApiException

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
    return KubeError(status, message)
