"""Turn the rendered chart's containers into `docker run` arguments, so the images run as the chart says.

The container tests must run what the chart deploys, not a hand-written copy of it: command, args,
env (values, Secret and ConfigMap references resolved from the rendered objects), user and groups,
read-only root, dropped capabilities, no privilege escalation, memory/CPU limits and volumes all come
from the rendered pod spec. All containers share one network namespace as a pod does, so every
Service name in the chart (short, namespaced or fully qualified) becomes 127.0.0.1 and a Service port
becomes its target port. Volumes: emptyDir and PersistentVolumeClaim become fresh host folders
(writable by the pod's users, as kubelet makes them), ConfigMap and Secret keys become read-only
bind mounts of files (or of a host file given in place of a key, e.g. the real CSV).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

LOCALHOST = "127.0.0.1"
_QUANTITY = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
}


def memory_bytes(quantity: str | int) -> int:
    """A Kubernetes memory quantity ("384Mi", "1Gi", "1000000") in bytes."""
    text = str(quantity)
    for suffix, factor in sorted(_QUANTITY.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(float(text))


def cpus(quantity: str | int | float) -> float:
    """A Kubernetes CPU quantity ("500m", "2", 1) in CPUs."""
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


@dataclass(frozen=True)
class Chart:
    """The rendered objects of one release, with the look-ups a pod needs."""

    docs: tuple[dict[str, Any], ...]
    namespace: str

    def objects(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d.get("kind") == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        for doc in self.objects(kind):
            if doc["metadata"]["name"] == name:
                return doc
        raise KeyError(f"the rendered chart has no {kind} {name!r}")

    def workload(self, component: str, kind: str = "Deployment") -> dict[str, Any]:
        """The Deployment (or Job, ...) labelled app.kubernetes.io/component=<component>."""
        found = [
            d
            for d in self.objects(kind)
            if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
        ]
        if len(found) != 1:
            raise KeyError(f"expected one {kind} of component {component!r}, found {len(found)}")
        return found[0]

    def all_containers(self) -> list[dict[str, Any]]:
        """Every container and init container of every pod template in the release."""
        out: list[dict[str, Any]] = []
        for doc in self.docs:
            spec = pod_spec(doc)
            if spec is not None:
                out += [*spec.get("initContainers", []), *spec.get("containers", [])]
        return out

    def secret_value(self, name: str, key: str) -> str | None:
        secret = self.named("Secret", name)
        if key in secret.get("stringData", {}):
            return str(secret["stringData"][key])
        if key in secret.get("data", {}):
            return base64.b64decode(secret["data"][key]).decode()
        return None

    def configmap_value(self, name: str, key: str) -> str | None:
        data = self.named("ConfigMap", name).get("data", {})
        return None if key not in data else str(data[key])

    @cached_property
    def service_rewrites(self) -> list[tuple[re.Pattern[str], str]]:
        """(pattern, replacement) pairs: Service host names (and host:port) -> 127.0.0.1[:targetPort]."""
        rewrites: list[tuple[re.Pattern[str], str]] = []
        for svc in self.objects("Service"):
            name = svc["metadata"]["name"]
            ns = svc["metadata"].get("namespace", self.namespace)
            hosts = [f"{name}.{ns}.svc.cluster.local", f"{name}.{ns}.svc", f"{name}.{ns}", name]
            ports = {int(p["port"]): self._target_port(svc, p) for p in svc["spec"].get("ports", [])}
            for host in hosts:
                quoted = re.escape(host)
                for port, target in ports.items():
                    rewrites.append(
                        (re.compile(rf"(?<![\w.-]){quoted}:{port}(?![\w.-])"), f"{LOCALHOST}:{target}")
                    )
                bare = f"{LOCALHOST}:{ports[80]}" if ports.get(80, 80) != 80 else LOCALHOST
                rewrites.append((re.compile(rf"(?<![\w.-]){quoted}(?![\w.-])"), bare))
        return rewrites

    def _target_port(self, svc: dict[str, Any], port: dict[str, Any]) -> int:
        target = port.get("targetPort", port["port"])
        if isinstance(target, int) or str(target).isdigit():
            return int(target)
        selector = svc["spec"].get("selector", {})
        for doc in self.docs:
            spec = pod_spec(doc)
            labels = _pod_labels(doc)
            if spec is None or not selector or any(labels.get(k) != v for k, v in selector.items()):
                continue
            for container in spec.get("containers", []):
                for p in container.get("ports", []):
                    if p.get("name") == target:
                        return int(p["containerPort"])
        raise KeyError(f"Service {svc['metadata']['name']}: named targetPort {target!r} matches no container")

    def localize(self, text: str) -> str:
        for pattern, replacement in self.service_rewrites:
            text = pattern.sub(replacement, text)
        return text


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    kind = doc.get("kind")
    if kind == "Pod":
        return doc["spec"]
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        return doc["spec"]["template"]["spec"]
    if kind == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def _pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    if doc.get("kind") == "Pod":
        return doc["metadata"].get("labels", {})
    return doc.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})


@dataclass
class ContainerRun:
    """One chart container as `docker run` sees it."""

    name: str
    image: str
    entrypoint: list[str] | None
    args: list[str]
    env: dict[str, str]
    user: int
    group: int
    groups: list[int]
    read_only: bool
    cap_drop: list[str]
    cap_add: list[str]
    no_new_privileges: bool
    privileged: bool
    seccomp: str | None
    memory: int | None
    cpus: float | None
    workdir: str | None
    mounts: list[str] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    readiness: dict[str, Any] | None = None

    def docker_args(self) -> list[str]:
        """Everything between `docker run` and the image's arguments, except name and network."""
        out = ["--user", f"{self.user}:{self.group}"]
        for g in self.groups:
            out += ["--group-add", str(g)]
        if self.read_only:
            out.append("--read-only")
        for cap in self.cap_drop:
            out += ["--cap-drop", cap]
        for cap in self.cap_add:
            out += ["--cap-add", cap]
        if self.no_new_privileges:
            out += ["--security-opt", "no-new-privileges"]
        if self.privileged:
            out.append("--privileged")
        if self.seccomp == "Unconfined":
            out += ["--security-opt", "seccomp=unconfined"]
        if self.memory:
            out += ["--memory", str(self.memory), "--memory-swap", str(self.memory)]
        if self.cpus:
            out += ["--cpus", f"{self.cpus:g}"]
        if self.workdir:
            out += ["--workdir", self.workdir]
        for key, value in self.env.items():
            out += ["--env", f"{key}={value}"]
        for mount in self.mounts:
            out += ["--mount", mount]
        if self.entrypoint is not None:
            out += ["--entrypoint", self.entrypoint[0]]
        return out

    def command_line(self) -> list[str]:
        """What follows the image: the rest of `command` (ENTRYPOINT) and `args` (CMD)."""
        return [*(self.entrypoint or [])[1:], *self.args]


def container_run(
    chart: Chart,
    workload: dict[str, Any],
    container_name: str,
    *,
    files_dir: Path,
    key_files: Mapping[tuple[str, str], Path] | None = None,
) -> ContainerRun:
    """The chart's container `container_name` of `workload` (init containers included) for docker run.

    files_dir receives ConfigMap/Secret keys as files; key_files maps (ConfigMap name, key) to a host
    file mounted in its place (read-only, like every ConfigMap key).
    """
    spec = pod_spec(workload)
    if spec is None:
        raise KeyError(f"{workload['kind']} has no pod template")
    containers = [*spec.get("initContainers", []), *spec.get("containers", [])]
    matches = [c for c in containers if c["name"] == container_name]
    if not matches:
        raise KeyError(f"{workload['metadata']['name']} has no container {container_name!r}")
    c = matches[0]
    pod_sc = spec.get("securityContext", {})
    sc = c.get("securityContext", {})
    user = int(sc.get("runAsUser", pod_sc.get("runAsUser", -1)))
    group = int(sc.get("runAsGroup", pod_sc.get("runAsGroup", user)))
    if user < 0:
        raise ValueError(f"{c['name']}: the chart sets no runAsUser (the image's user would apply)")
    if (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True) and user == 0:
        raise ValueError(f"{c['name']}: runAsNonRoot with uid 0 (kubelet would refuse it)")
    groups = [int(g) for g in pod_sc.get("supplementalGroups", [])]
    if "fsGroup" in pod_sc and int(pod_sc["fsGroup"]) != group:
        groups.append(int(pod_sc["fsGroup"]))
    seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
    caps = sc.get("capabilities", {})
    limits = c.get("resources", {}).get("limits", {})

    env = _resolve_env(chart, c)
    expand = _expander(env)
    command = [chart.localize(expand(str(x))) for x in c.get("command", [])] or None
    args = [chart.localize(expand(str(x))) for x in c.get("args", [])]

    ports = {str(p.get("name", p["containerPort"])): int(p["containerPort"]) for p in c.get("ports", [])}
    readiness = c.get("readinessProbe")
    return ContainerRun(
        name=c["name"],
        image=c["image"],
        entrypoint=command,
        args=args,
        env=env,
        user=user,
        group=group,
        groups=groups,
        read_only=bool(sc.get("readOnlyRootFilesystem", False)),
        cap_drop=list(caps.get("drop", [])),
        cap_add=list(caps.get("add", [])),
        no_new_privileges=sc.get("allowPrivilegeEscalation") is False,
        privileged=bool(sc.get("privileged", False)),
        seccomp=seccomp,
        memory=memory_bytes(limits["memory"]) if "memory" in limits else None,
        cpus=cpus(limits["cpu"]) if "cpu" in limits else None,
        workdir=c.get("workingDir"),
        mounts=_mounts(chart, workload["metadata"]["name"], spec, c, files_dir, dict(key_files or {})),
        ports=ports,
        readiness=readiness,
    )


def _resolve_env(chart: Chart, c: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "secretRef" in source:
            doc = chart.named("Secret", source["secretRef"]["name"])
            for key in doc.get("data", {}):
                env[prefix + key] = chart.secret_value(doc["metadata"]["name"], key) or ""
            for key, value in doc.get("stringData", {}).items():
                env[prefix + key] = str(value)
        if "configMapRef" in source:
            for key, value in (
                chart.named("ConfigMap", source["configMapRef"]["name"]).get("data", {}).items()
            ):
                env[prefix + key] = chart.localize(str(value))
    for item in c.get("env", []):
        name = item["name"]
        if "value" in item:
            env[name] = chart.localize(_expander(env)(str(item["value"])))
            continue
        ref = item.get("valueFrom", {})
        value: str | None = None
        if "secretKeyRef" in ref:
            value = chart.secret_value(ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"])
        elif "configMapKeyRef" in ref:
            value = chart.configmap_value(ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"])
            value = None if value is None else chart.localize(value)
        elif "fieldRef" in ref:
            value = {
                "metadata.namespace": chart.namespace,
                "metadata.name": c["name"],
                "status.podIP": LOCALHOST,
                "status.hostIP": LOCALHOST,
                "spec.nodeName": "node",
            }.get(ref["fieldRef"]["fieldPath"])
        if value is None:
            optional = next(iter(ref.values()), {}).get("optional", False) if ref else False
            if optional:
                continue
            raise KeyError(f"{c['name']}: env {name} refers to {ref} which the rendered chart does not hold")
        env[name] = value
    return env


def _expander(env: Mapping[str, str]) -> Callable[[str], str]:
    """Kubernetes' $(VAR) expansion in command, args and env values ($$ escapes)."""

    def expand(text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            if m.group(0).startswith("$$"):
                return m.group(0)[1:]
            return env.get(m.group(1), m.group(0))

        return re.sub(r"\$\$\([A-Za-z_][A-Za-z0-9_]*\)|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, text)

    return expand


def _mounts(
    chart: Chart,
    workload_name: str,
    spec: dict[str, Any],
    c: dict[str, Any],
    files_dir: Path,
    key_files: dict[tuple[str, str], Path],
) -> list[str]:
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    out: list[str] = []
    for vm in c.get("volumeMounts", []):
        volume = volumes[vm["name"]]
        target = vm["mountPath"]
        ro = ",readonly" if vm.get("readOnly") else ""
        if "emptyDir" in volume or "persistentVolumeClaim" in volume:
            # A fresh host folder per pod and volume, shared by the pod's containers like the volume, and
            # world-writable as kubelet makes emptyDirs (a PVC is group-writable through fsGroup). Not a
            # tmpfs: Docker copies the mode of the image's folder onto a tmpfs mounted over it.
            folder = files_dir / "volumes" / f"{workload_name}-{volume['name']}"
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o1777)
            out.append(f"type=bind,source={folder},destination={target}{ro}")
        elif "configMap" in volume or "secret" in volume:
            kind, ref = (
                ("ConfigMap", volume["configMap"]) if "configMap" in volume else ("Secret", volume["secret"])
            )
            name = ref.get("name") or ref.get("secretName")
            out.extend(_key_mounts(chart, kind, name, ref, vm, files_dir, key_files))
        elif "projected" in volume:
            # The chart's secrets volume: Secret and ConfigMap sources merged into one folder.
            for source in volume["projected"]["sources"]:
                kind = "Secret" if "secret" in source else "ConfigMap"
                ref = source.get("secret") or source.get("configMap")
                if ref is None:
                    raise ValueError(f"{c['name']}: projected source not supported here: {source}")
                out.extend(_key_mounts(chart, kind, ref["name"], ref, vm, files_dir, key_files))
        else:
            raise ValueError(
                f"{c['name']}: volume type of {volume['name']!r} is not supported here: {volume}"
            )
    return out


def _key_mounts(
    chart: Chart,
    kind: str,
    name: str,
    ref: dict[str, Any],
    vm: dict[str, Any],
    files_dir: Path,
    key_files: dict[tuple[str, str], Path],
) -> Iterable[str]:
    doc = chart.named(kind, name)
    keys = list(doc.get("data", {})) + list(doc.get("stringData", {}))
    items = ref.get("items") or [{"key": k, "path": k} for k in keys]
    if "subPath" in vm:
        items = [i for i in items if i["path"] == vm["subPath"]]
    for item in items:
        key, path = item["key"], item["path"]
        source = key_files.get((name, key))
        if source is None:
            value = chart.secret_value(name, key) if kind == "Secret" else chart.configmap_value(name, key)
            source = files_dir / f"{kind.lower()}-{name}-{key}"
            source.write_text(value or "")
            source.chmod(0o444)
        target = vm["mountPath"] if "subPath" in vm else f"{vm['mountPath'].rstrip('/')}/{path}"
        yield f"type=bind,source={Path(source).resolve()},destination={target},readonly"
