"""A Kubernetes API emulator good enough for a real kopf operator: kmock's scaffold plus storage.

kmock (PyPI) serves Kubernetes discovery over real HTTP. Its own stateful emulator stores objects
without ``uid``/``resourceVersion`` (so kopf's JSON patch with a resourceVersion ``test`` fails and
the object is never reconciled) and replays objects before subscribing to changes (so a change in
between is lost). This emulator keeps kmock's discovery and error rendering and brings its own
store: every object gets a uid, a creationTimestamp, a global resourceVersion and a generation that
moves only when the spec (anything outside metadata and status) changes; merge and JSON patches are
applied (a failed ``test`` answers 422); the status subresource is honoured; deletion respects
finalizers; watches resume from a resourceVersion from a log of events, losing nothing; and
equality label selectors filter lists. It enforces no schemas and runs no controllers: a test
plays the Deployment controller by patching ``deployments/status`` itself.

Run it on a thread with its own event loop (:class:`EmulatorThread`) and talk to it over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import json
import threading
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp.web
import kmock
import yaml
from kmock import KubernetesError, KubernetesScaffold, ResourceInfo, action

VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status: bool = False

    @property
    def key(self) -> str:
        return f"{self.group}/{self.version}/{self.plural}" if self.group else f"{self.version}/{self.plural}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


KINDS = [
    Kind("serving.btcforecast.io", "v1alpha1", "modelaliases", "ModelAlias", status=True),
    Kind("apps", "v1", "deployments", "Deployment", status=True),
    Kind("serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService", status=True),
    Kind("", "v1", "pods", "Pod", status=True),
    Kind("", "v1", "secrets", "Secret"),
    Kind("", "v1", "events", "Event"),
    Kind("", "v1", "namespaces", "Namespace", namespaced=False),
    Kind(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
    ),
]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: dicts merge recursively, ``None`` removes, anything else replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class PatchTestFailed(Exception):
    pass


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def json_patch(doc: Any, ops: list[Mapping[str, Any]]) -> Any:
    """RFC 6902 (test, add, remove, replace); raises PatchTestFailed or ValueError."""
    doc = copy.deepcopy(doc)
    for op in ops:
        tokens = [_unescape(t) for t in str(op["path"]).split("/")[1:]]
        parent: Any = doc
        for token in tokens[:-1]:
            parent = parent[int(token)] if isinstance(parent, list) else parent[token]
        last = tokens[-1] if tokens else None
        kind = op["op"]
        if kind == "test":
            current = (parent[int(last)] if isinstance(parent, list) else parent.get(last)) if last else doc
            if current != op.get("value"):
                raise PatchTestFailed(f"test failed at {op['path']}: {current!r} != {op.get('value')!r}")
        elif kind == "add":
            if isinstance(parent, list):
                parent.insert(len(parent) if last == "-" else int(last), copy.deepcopy(op["value"]))
            else:
                parent[last] = copy.deepcopy(op["value"])
        elif kind == "replace":
            if isinstance(parent, list):
                parent[int(last)] = copy.deepcopy(op["value"])
            elif last not in parent:
                raise ValueError(f"replace of missing {op['path']}")
            else:
                parent[last] = copy.deepcopy(op["value"])
        elif kind == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                del parent[last]
        else:
            raise ValueError(f"unsupported JSON patch op {kind!r}")
    return doc


def _spec_part(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _selector_matches(selector: str | None, labels: Mapping[str, str]) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip().lstrip("="):
            return False
    return True


def _namespace(name: str, resource_version: int | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if resource_version is not None:
        meta["resourceVersion"] = str(resource_version)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


HISTORY = 64
"""Requests kept in kmock's history. kmock matches each request against its reactions by scanning
every request it has kept, so a full history makes each answer slower than the last: after the few
thousand polls of a long run (bench/webhooks.py) one GET took 0.2-0.5 s instead of about 15 ms.
Nothing here reads the history; the newest requests stay for the matches still under way."""


class KubeEmulator(KubernetesScaffold):
    """kmock's Kubernetes scaffold (discovery, errors) with a faithful-enough object store."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._kinds = {(k.group, k.version, k.plural): k for k in KINDS}
        self._store: dict[tuple[str, str, str], dict[tuple[str | None, str], dict[str, Any]]] = {
            key: {} for key in self._kinds
        }
        self._log: list[tuple[int, tuple[str, str, str], dict[str, Any]]] = []
        self._rv = 0
        self._changed: asyncio.Condition | None = None
        for k in KINDS:
            self.resources[k.key] = ResourceInfo(
                kind=k.kind, namespaced=k.namespaced, verbs=VERBS, subresources=["status"] if k.status else []
            )
        self.fallback[action.LIST] << self._list
        self.fallback[action.WATCH] << self._watch
        self.fallback[action.FETCH] << self._fetch
        self.fallback[action.CREATE] << self._create
        self.fallback[action.UPDATE] << self._update
        self.fallback[action.DELETE] << self._delete

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        del self._requests[:-HISTORY]
        for reaction in self._payloads:
            del reaction._requests[:-HISTORY]
        # kmock's path parser takes the "namespaces" of /api/v1/namespaces for a namespace prefix
        # and fails; kopf lists and watches namespaces, so answer those two here.
        if raw_request.path.rstrip("/") == "/api/v1/namespaces" and raw_request.method == "GET":
            return await self._namespaces(raw_request)
        return await super().__call__(raw_request)

    def _namespace_names(self) -> set[str]:
        """Namespaces exist here through their objects (and ``default``)."""
        return {"default"} | {ns for objects in self._store.values() for ns, _ in objects if ns}

    async def _namespaces(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """List namespaces, or watch them: an ADDED event for each one there is when the watch starts
        (one may have appeared between kopf's list and its watch; the emulator keeps no history to
        replay from) and for each that appears meanwhile (the first object created in it), so an
        operator started before its namespace had objects serves it as soon as it exists."""
        names = self._namespace_names()
        if raw_request.query.get("watch") != "true":
            return aiohttp.web.json_response(
                {
                    "apiVersion": "v1",
                    "kind": "NamespaceList",
                    "metadata": {"resourceVersion": str(self._rv)},
                    "items": [_namespace(n) for n in sorted(names)],
                }
            )
        response = aiohttp.web.StreamResponse()
        await response.prepare(raw_request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(raw_request.query.get("timeoutSeconds") or 60)
        announced: set[str] = set()  # every namespace now too: one may have appeared since the list
        while True:
            appeared = self._namespace_names() - announced
            for name in sorted(appeared):
                event = {"type": "ADDED", "object": _namespace(name, self._rv)}
                await response.write(json.dumps(event).encode() + b"\n")
            announced |= appeared
            if (left := deadline - loop.time()) <= 0:
                break
            async with self.changed:
                try:
                    await asyncio.wait_for(self.changed.wait(), left)
                except TimeoutError:
                    break
        return response

    # --- helpers ---------------------------------------------------------------------------------

    @property
    def changed(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    def _kind(self, request: kmock.Request) -> Kind:
        res = request.resource
        kind = self._kinds.get((res.group, res.version, res.plural)) if res is not None else None
        if kind is None:
            raise KubernetesError(
                status=404, reason="NotFound", message=f"unknown resource {request.url.path}"
            )
        return kind

    def _objects(self, kind: Kind) -> dict[tuple[str | None, str], dict[str, Any]]:
        return self._store[(kind.group, kind.version, kind.plural)]

    async def _record(self, kind: Kind, event_type: str, obj: dict[str, Any]) -> None:
        self._log.append(
            (self._rv, (kind.group, kind.version, kind.plural), {"type": event_type, "object": obj})
        )
        async with self.changed:
            self.changed.notify_all()

    def _stamp(self, kind: Kind, old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
        self._rv += 1
        meta = new.setdefault("metadata", {})
        meta["resourceVersion"] = str(self._rv)
        if old is None:
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", _now())
            meta["generation"] = 1
        else:
            generation = int(old["metadata"].get("generation") or 1)
            meta["generation"] = generation + 1 if _spec_part(old) != _spec_part(new) else generation
        new["apiVersion"], new["kind"] = kind.api_version, kind.kind
        return new

    @staticmethod
    def _not_found(kind: Kind, namespace: str | None, name: str | None) -> KubernetesError:
        return KubernetesError(
            status=404, reason="NotFound", message=f'{kind.plural} "{name}" not found in {namespace}'
        )

    def _matches(self, request: kmock.Request, kind: Kind, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if kind.namespaced and request.namespace is not None and meta.get("namespace") != request.namespace:
            return False
        if request.name is not None and meta.get("name") != request.name:
            return False
        return _selector_matches(request.params.get("labelSelector"), meta.get("labels") or {})

    # --- verbs -----------------------------------------------------------------------------------

    async def _list(self, request: kmock.Request) -> dict[str, Any]:
        kind = self._kind(request)
        items = [copy.deepcopy(o) for o in self._objects(kind).values() if self._matches(request, kind, o)]
        return {
            "apiVersion": kind.api_version,
            "kind": f"{kind.kind}List",
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    async def _watch(self, request: kmock.Request) -> AsyncIterator[Any]:
        kind = self._kind(request)
        key = (kind.group, kind.version, kind.plural)
        yield b""  # send the headers now: the stream is open even if nothing happens
        since_param = request.params.get("resourceVersion")
        if since_param:
            since = int(since_param)
        else:
            since = self._rv
            for obj in list(self._objects(kind).values()):
                if self._matches(request, kind, obj):
                    yield {"type": "ADDED", "object": copy.deepcopy(obj)}
        timeout = float(request.params.get("timeoutSeconds") or 0) or None
        deadline = asyncio.get_running_loop().time() + timeout if timeout else None
        position = next((i for i, (rv, _, _) in enumerate(self._log) if rv > since), len(self._log))
        while True:
            while position < len(self._log):
                _, event_key, event = self._log[position]
                position += 1
                if event_key == key and self._matches(request, kind, event["object"]):
                    yield copy.deepcopy(event)
            remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
            if remaining is not None and remaining <= 0:
                return
            async with self.changed:
                if position >= len(self._log):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.changed.wait(), timeout=min(remaining or 5.0, 5.0))

    async def _fetch(self, request: kmock.Request) -> dict[str, Any]:
        kind = self._kind(request)
        obj = self._objects(kind).get((request.namespace if kind.namespaced else None, str(request.name)))
        if obj is None:
            raise self._not_found(kind, request.namespace, request.name)
        return copy.deepcopy(obj)

    async def _create(self, request: kmock.Request) -> dict[str, Any]:
        kind = self._kind(request)
        obj = copy.deepcopy(dict(request.data or {}))
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:8]}"
        if not meta.get("name"):
            raise KubernetesError(status=422, reason="Invalid", message="metadata.name is required")
        namespace = (request.namespace or meta.get("namespace") or "default") if kind.namespaced else None
        if namespace is not None:
            meta["namespace"] = namespace
        objects = self._objects(kind)
        if (namespace, meta["name"]) in objects:
            raise KubernetesError(
                status=409, reason="AlreadyExists", message=f'{kind.plural} "{meta["name"]}" exists'
            )
        obj = self._stamp(kind, None, obj)
        objects[(namespace, meta["name"])] = obj
        await self._record(kind, "ADDED", copy.deepcopy(obj))
        return copy.deepcopy(obj)

    def _existing(
        self, request: kmock.Request
    ) -> tuple[Kind, dict[tuple[str | None, str], dict[str, Any]], tuple[str | None, str], dict[str, Any]]:
        """The kind, its store, the key and the stored object a request names; 404 when absent."""
        kind = self._kind(request)
        objects = self._objects(kind)
        key = (request.namespace if kind.namespaced else None, str(request.name))
        old = objects.get(key)
        if old is None:
            raise self._not_found(kind, request.namespace, request.name)
        return kind, objects, key, old

    async def _update(self, request: kmock.Request) -> dict[str, Any]:
        kind, objects, key, old = self._existing(request)
        content_type = request.headers.get("Content-Type", "")
        try:
            if "json-patch" in content_type:
                new = json_patch(old, list(request.data or []))
            else:  # merge patch; a strategic merge patch is approximated by it
                new = merge_patch(old, request.data or {})
        except PatchTestFailed as e:
            raise KubernetesError(status=422, reason="Invalid", message=str(e)) from e
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise KubernetesError(status=422, reason="Invalid", message=f"bad patch: {e}") from e
        if kind.status:
            if request.subresource == "status":
                new = {**copy.deepcopy(old), "status": new.get("status")}
                if new["status"] is None:
                    del new["status"]
            elif "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if new == old:
            return copy.deepcopy(old)
        new = self._stamp(kind, old, new)
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            del objects[key]
            await self._record(kind, "DELETED", copy.deepcopy(new))
        else:
            objects[key] = new
            await self._record(kind, "MODIFIED", copy.deepcopy(new))
        return copy.deepcopy(new)

    async def _delete(self, request: kmock.Request) -> dict[str, Any]:
        kind, objects, key, old = self._existing(request)
        if old["metadata"].get("finalizers"):
            if not old["metadata"].get("deletionTimestamp"):
                new = copy.deepcopy(old)
                new["metadata"]["deletionTimestamp"] = _now()
                objects[key] = self._stamp(kind, old, new)
                await self._record(kind, "MODIFIED", copy.deepcopy(objects[key]))
            return copy.deepcopy(objects[key])
        del objects[key]
        self._rv += 1
        await self._record(kind, "DELETED", copy.deepcopy(old))
        return copy.deepcopy(old)

    def install_crd(self, path: Path) -> None:
        """Store a CRD (from its YAML) so it shows up where kopf looks for it."""
        crd = yaml.safe_load(path.read_text())
        kind = self._kinds[("apiextensions.k8s.io", "v1", "customresourcedefinitions")]
        self._objects(kind)[(None, crd["metadata"]["name"])] = self._stamp(kind, None, crd)


class EmulatorThread:
    """The emulator served over HTTP on 127.0.0.1 from its own thread and event loop."""

    def __init__(self, port: int, crd: Path | None = None) -> None:
        self.port = port
        self.crd = crd
        self.url = f"http://127.0.0.1:{port}"
        self.emulator: KubeEmulator | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kube-emulator", daemon=True)

    def start(self) -> EmulatorThread:
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"the Kubernetes emulator did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as e:
            self._error = e
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        emulator = KubeEmulator()
        if self.crd is not None:
            emulator.install_crd(self.crd)
        async with emulator, kmock.Server(emulator, host="127.0.0.1", port=self.port):
            self.emulator = emulator
            self._ready.set()
            await self._stop.wait()

    def write_kubeconfig(self, path: Path) -> Path:
        return write_kubeconfig(path, self.url)


def write_kubeconfig(path: Path, server: str) -> Path:
    """A kubeconfig whose one context talks to ``server`` with a dummy bearer token."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": server}}],
        "users": [{"name": "emulator", "user": {"token": "emulator-token"}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "emulator"}}],
        "current-context": "emulator",
    }
    path.write_text(yaml.safe_dump(config))
    return path
