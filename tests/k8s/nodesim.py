"""A simulated node that plays the kubelet, as kwok does, so the real controllers do the rest.

Where no kubelet runs, pods stay Pending and a Deployment never becomes available. NodeSimulator
registers a fake Node (Ready, with capacity, heartbeats so the node lifecycle controller keeps it
Ready), binds the pods of one namespace to it through the ``binding`` subresource and writes their
``pods/status`` the way a kubelet would: Running and Ready with a pod IP ("ready"), Running but never
Ready ("never-ready"), or crash-looping with a growing restart count ("crashloop"). The Deployment,
ReplicaSet and the rest are the real controllers reacting to that status. Pods being deleted are
confirmed (deleted with grace period 0) as a kubelet does once their containers stopped.

The node carries a NoSchedule taint, so the real scheduler never places other namespaces' pods on
it; pods of the watched namespace are bound by the simulator itself. Pod IPs default to distinct
loopback addresses (127.10.x.y) so a test can run a real process listening at a pod's IP. Note that
Kubernetes refuses loopback addresses in Endpoints: Services of simulated pods get no endpoints.
``behaviour`` and ``pod_ip`` receive the pod as the API returns it (a dict of its JSON).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

Behaviour = Literal["ready", "never-ready", "crashloop"]
Pod = dict[str, Any]
BEHAVIOURS: tuple[Behaviour, ...] = ("ready", "never-ready", "crashloop")
TAINT_KEY = "btcf.dev/simulated-node"
NODE_LABEL = "btcf.dev/simulated-node"
KUBELET_VERSION = "v1.20.2"
_log = logging.getLogger(__name__)
_loopback_counter = itertools.count(0)


def next_loopback_ip(_pod: Pod | None = None) -> str:
    """A loopback address not handed out before in this process: 127.10.0.1, 127.10.0.2, ..."""
    n = next(_loopback_counter) % (250 * 250)
    return f"127.10.{n // 250}.{n % 250 + 1}"


def always_ready(_pod: Pod) -> Behaviour:
    return "ready"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SimulatedPod:
    """What the simulator decided for one pod (by uid) and what it has reported so far."""

    namespace: str
    name: str
    behaviour: Behaviour
    ip: str
    started: str = field(default_factory=_now)
    restarts: int = 0
    last_crash: str | None = None


class NodeSimulator:
    """A fake Ready node for the pods of ``namespace`` (None: every namespace); start()/stop().

    ``behaviour(pod)`` is asked once per pod (by uid); ``pod_ip(pod)`` gives its IP (default:
    a fresh loopback address). Crash-looping pods restart every ``crash_interval`` seconds.
    """

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str | None,
        *,
        node_name: str | None = None,
        behaviour: Callable[[Pod], Behaviour] = always_ready,
        pod_ip: Callable[[Pod], str] = next_loopback_ip,
        host_ip: str = "127.0.0.1",
        crash_interval: float = 2.0,
        heartbeat_interval: float = 10.0,
        watch_timeout: int = 10,
    ) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.node_name = node_name or f"btcf-sim-{uuid.uuid4().hex[:8]}"
        self.behaviour = behaviour
        self.pod_ip = pod_ip
        self.host_ip = host_ip
        self.crash_interval = crash_interval
        self.heartbeat_interval = heartbeat_interval
        self.watch_timeout = watch_timeout
        self.errors: list[str] = []
        self._pods: dict[str, SimulatedPod] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._synced = threading.Event()
        self._threads: list[threading.Thread] = []
        self._watch: watch.Watch | None = None

    # -- public -----------------------------------------------------------------------------------
    def start(self, timeout: float = 30) -> NodeSimulator:
        if self._threads:
            return self
        self._stopping.clear()
        self._register_node()
        for target in (self._watch_pods, self._tick):
            thread = threading.Thread(target=target, name=f"{self.node_name}-{target.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)
        if not self._synced.wait(timeout):
            self.stop()
            raise TimeoutError(
                f"node simulator {self.node_name}: no pod list after {timeout:.0f} s: {self.errors}"
            )
        return self

    def stop(self, *, release_pods: bool = True) -> None:
        """Stop watching; force-delete the pods bound to the node (``release_pods``) and the Node."""
        self._stopping.set()
        if self._watch is not None:
            self._watch.stop()  # also shuts the socket down: the blocked read ends at once
        for thread in self._threads:
            thread.join(timeout=self.watch_timeout + 10)
        self._threads.clear()
        if release_pods:
            with contextlib.suppress(Exception):
                for pod in self._list_pods()[0]:
                    if pod["spec"].get("nodeName") == self.node_name:
                        self._force_delete(pod)
        with contextlib.suppress(ApiException):
            self.core.delete_node(self.node_name, grace_period_seconds=0)

    def pods(self) -> dict[str, SimulatedPod]:
        """The pods handled so far, by pod name (namespace/name when watching every namespace)."""
        with self._lock:
            return {(p.name if self.namespace else f"{p.namespace}/{p.name}"): p for p in self._pods.values()}

    def __enter__(self) -> NodeSimulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- the node ---------------------------------------------------------------------------------
    def _register_node(self) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "labels": {
                    "kubernetes.io/hostname": self.node_name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    NODE_LABEL: "true",
                },
            },
            "spec": {"taints": [{"key": TAINT_KEY, "value": "true", "effect": "NoSchedule"}]},
        }
        with contextlib.suppress(ApiException):
            self.core.delete_node(self.node_name, grace_period_seconds=0)
        self.core.create_node(node)
        self._heartbeat()

    def _heartbeat(self) -> None:
        now = _now()
        resources = {"cpu": "32", "memory": "256Gi", "pods": "250", "ephemeral-storage": "1Ti"}

        def condition(kind: str, status: str, reason: str) -> dict[str, str]:
            return {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": f"simulated by {self.node_name}",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }

        status = {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID"),
                condition("Ready", "True", "KubeletReady"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": self.host_ip},
                {"type": "Hostname", "address": self.node_name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": self.node_name,
                "systemUUID": self.node_name,
                "bootID": self.node_name,
                "kernelVersion": "simulated",
                "osImage": "simulated",
                "containerRuntimeVersion": "simulated://1",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }
        self.core.patch_node_status(self.node_name, {"status": status})

    # -- threads ----------------------------------------------------------------------------------
    def _list_pods(self) -> tuple[list[Pod], str]:
        if self.namespace is None:
            response = self.core.list_pod_for_all_namespaces(_preload_content=False)
        else:
            response = self.core.list_namespaced_pod(self.namespace, _preload_content=False)
        body = json.loads(response.data)
        return body["items"], body["metadata"]["resourceVersion"]

    def _watch_pods(self) -> None:
        version: str | None = None
        while not self._stopping.is_set():
            try:
                if version is None:
                    pods, version = self._list_pods()
                    for pod in pods:
                        self._reconcile(pod)
                    self._synced.set()
                self._watch = watch.Watch()
                if self.namespace is None:
                    func, args = self.core.list_pod_for_all_namespaces, ()
                else:
                    func, args = self.core.list_namespaced_pod, (self.namespace,)
                for event in self._watch.stream(
                    func, *args, resource_version=version, timeout_seconds=self.watch_timeout
                ):
                    if self._stopping.is_set():
                        break
                    pod = event["raw_object"]
                    version = pod["metadata"].get("resourceVersion", version)
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._reconcile(pod)
                    elif event["type"] == "DELETED":
                        with self._lock:
                            self._pods.pop(pod["metadata"]["uid"], None)
            except ApiException as e:
                if e.status != 410:  # 410: our version is too old; list again
                    self._record(f"watch: {e.status} {e.reason}")
                    self._stopping.wait(1)
                version = None
            except Exception as e:  # transient connection trouble: list again
                if not self._stopping.is_set():
                    self._record(f"watch: {e!r}")
                    self._stopping.wait(1)
                version = None

    def _tick(self) -> None:
        """Heartbeats for the node; a restart now and then for crash-looping pods."""
        last_heartbeat = time.monotonic()
        while not self._stopping.wait(min(self.crash_interval, self.heartbeat_interval)):
            try:
                if time.monotonic() - last_heartbeat >= self.heartbeat_interval:
                    self._heartbeat()
                    last_heartbeat = time.monotonic()
                with self._lock:
                    crashing = [p for p in self._pods.values() if p.behaviour == "crashloop"]
                for sim in crashing:
                    with self._lock:
                        sim.restarts += 1
                        sim.last_crash = _now()
                    with contextlib.suppress(ApiException):  # gone meanwhile
                        pod = self.core.read_namespaced_pod(sim.name, sim.namespace, _preload_content=False)
                        self._reconcile(json.loads(pod.data))
            except Exception as e:
                self._record(f"tick: {e!r}")

    def _record(self, message: str) -> None:
        _log.warning("node simulator %s: %s", self.node_name, message)
        self.errors.append(message)

    # -- pods -------------------------------------------------------------------------------------
    def _reconcile(self, pod: Pod) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        node = spec.get("nodeName")
        if node not in (None, "", self.node_name):
            return
        if meta.get("deletionTimestamp"):
            if node == self.node_name:
                self._force_delete(pod)
            return
        try:
            if not node:
                self._bind(pod)
            sim = self._simulated(pod)
            status = _pod_status(pod, sim, self.host_ip)
            if _signature(pod.get("status") or {}) != _signature(status):
                self.core.patch_namespaced_pod_status(meta["name"], meta["namespace"], {"status": status})
        except ApiException as e:
            if e.status not in (404, 409):  # deleted, or bound elsewhere meanwhile
                self._record(f"pod {meta['namespace']}/{meta['name']}: {e.status} {e.reason}")

    def _simulated(self, pod: Pod) -> SimulatedPod:
        meta = pod["metadata"]
        with self._lock:
            sim = self._pods.get(meta["uid"])
            if sim is None:
                behaviour = self.behaviour(pod)
                if behaviour not in BEHAVIOURS:
                    raise ValueError(f"behaviour {behaviour!r}: one of {BEHAVIOURS}")
                sim = SimulatedPod(meta["namespace"], meta["name"], behaviour, self.pod_ip(pod))
                self._pods[meta["uid"]] = sim
            return sim

    def _bind(self, pod: Pod) -> None:
        meta = pod["metadata"]
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        # the response is a Status, which the generated client cannot read as a Binding
        self.core.create_namespaced_binding(meta["namespace"], binding, _preload_content=False)

    def _force_delete(self, pod: Pod) -> None:
        meta = pod["metadata"]
        with contextlib.suppress(ApiException):
            # with a body, the API server reads the options from it alone (not the query)
            self.core.delete_namespaced_pod(
                meta["name"],
                meta["namespace"],
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
            )
        with self._lock:
            self._pods.pop(meta["uid"], None)


def _pod_status(pod: Pod, sim: SimulatedPod, host_ip: str) -> dict[str, Any]:
    """The status a kubelet would report for ``pod`` behaving as ``sim.behaviour``."""
    uid = pod["metadata"]["uid"]
    ready = sim.behaviour == "ready"
    containers: list[dict[str, Any]] = []
    for spec in pod["spec"]["containers"]:
        status: dict[str, Any] = {
            "name": spec["name"],
            "image": spec["image"],
            "imageID": f"simulated://{spec['image']}",
            "containerID": f"simulated://{uid}/{spec['name']}",
            "ready": ready,
            "restartCount": sim.restarts,
        }
        if sim.behaviour == "crashloop":
            status["started"] = False
            status["state"] = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off restarting failed container {spec['name']} (simulated)",
                }
            }
            if sim.restarts:
                status["lastState"] = {
                    "terminated": {
                        "exitCode": 1,
                        "reason": "Error",
                        "startedAt": sim.last_crash,
                        "finishedAt": sim.last_crash,
                    }
                }
        else:
            status["started"] = True
            status["state"] = {"running": {"startedAt": sim.started}}
        containers.append(status)
    not_ready = [c["name"] for c in containers if not c["ready"]]

    def condition(kind: str, ok: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": kind,
            "status": "True" if ok else "False",
            "lastTransitionTime": sim.started,
        }
        if not ok:
            entry["reason"] = "ContainersNotReady"
            entry["message"] = f"containers with unready status: [{' '.join(not_ready)}]"
        return entry

    status = {
        "phase": "Running",
        "hostIP": host_ip,
        "podIP": sim.ip,
        "podIPs": [{"ip": sim.ip}],
        "startTime": sim.started,
        "conditions": [
            condition("Initialized", True),
            condition("Ready", ready),
            condition("ContainersReady", ready),
            condition("PodScheduled", True),
        ],
        "containerStatuses": containers,
    }
    init = pod["spec"].get("initContainers") or []
    if init:
        status["initContainerStatuses"] = [
            {
                "name": spec["name"],
                "image": spec["image"],
                "imageID": f"simulated://{spec['image']}",
                "containerID": f"simulated://{uid}/{spec['name']}",
                "ready": True,
                "restartCount": 0,
                "state": {
                    "terminated": {
                        "exitCode": 0,
                        "reason": "Completed",
                        "startedAt": sim.started,
                        "finishedAt": sim.started,
                    }
                },
            }
            for spec in init
        ]
    return status


def _signature(status: dict[str, Any]) -> tuple[Any, ...]:
    """What must match for a reported status to need no update."""
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    containers = tuple(
        (c.get("name"), c.get("ready"), c.get("restartCount"), tuple(sorted((c.get("state") or {}).keys())))
        for c in status.get("containerStatuses") or []
    )
    return (status.get("phase"), status.get("podIP"), conditions.get("Ready"), containers)
