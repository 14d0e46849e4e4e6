"""A real single-node Kubernetes v1.20 cluster that runs the chart's pods, isolated from the host.

The API server alone (tests.k8s.controlplane) proves objects are accepted; only a kubelet proves the
pods run: images start, probes pass, Services route, DNS resolves, volumes mount. Everything here runs
inside a tests.k8s.sandbox.Sandbox (own network + mount namespace), because kubelet, kube-proxy and a
bridged dockerd rewrite iptables, create bridges and set sysctls:

- the control plane (etcd, kube-apiserver, controller-manager, scheduler) bound to the node address;
- the Docker engine on the shared data root (the images `make images` built are there), with docker0;
- the pod sandbox image: the static ``pause`` binary, ``docker import``-ed;
- kubelet with its built-in dockershim (``--container-runtime=docker``, no CNI: docker0 is the pod
  network), a client certificate of ``system:node:<name>`` signed by the control plane's CA;
- kube-proxy in iptables mode with ``masqueradeAll`` (no conntrack or other host-wide tuning);
- cluster DNS: dnsmasq on the node address answering ``<svc>.<ns>.svc.cluster.local`` (for a headless
  Service, its ready pods) from a hosts file that a watcher of Services keeps current (Debian has no
  CoreDNS);
- a tiny provisioner: every pending claim without a storage class gets a hostPath PersistentVolume
  (pre-bound to it), deleted with its folder once the claim is gone.

From the host the API server is reached through a port bridge (``kubeconfig``); ``serve_files()``
serves a folder over HTTP on the node address, for pods (e.g. the seed's CSV). ``figures`` holds the
measured start times; ``rss()`` the memory of every component and pod.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from kubernetes import client
from kubernetes.config import new_client_from_config

from tests.k8s.controlplane import ControlPlane
from tests.k8s.docker_engine import DOCKER_DIR, DockerEngine
from tests.k8s.paths import kube_binary, kubectl
from tests.k8s.sandbox import Sandbox

NODE_NAME = "btcf-node"
CLUSTER_DOMAIN = "cluster.local"
PAUSE_IMAGE = "btc-forecast/pause:v1.20.2"
POD_NETWORK = "172.17.0.0/16"  # docker0's default subnet, inside the sandbox only
KUBELET_PORT = 10250
FILE_SERVER_PORT = 18080
PROVISIONED_LABEL = "btc-forecast.test/provisioned-by"
POLL = 1.0


class NodeError(RuntimeError):
    """A component of the node did not start or did not become ready; the message names its log."""


class SandboxProcess:
    """One long-running process inside the sandbox, in its own process group, logging to a file."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, prefix: Sequence[str]) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.prefix = list(prefix)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> SandboxProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            out.write(f"--- {self.name}: {' '.join(self.argv)}\n".encode())
            out.flush()
            # nsenter without --fork execs the command: the pid is the component's own
            self._proc = subprocess.Popen(
                [*self.prefix, *self.argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def check_alive(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            code = None if self._proc is None else self._proc.returncode
            raise NodeError(f"{self.name} exited ({code}); log {self.log_path}:\n{self.log_tail()}")

    def signal(self, sig: signal.Signals) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(sig)

    def stop(self, grace: float = 15) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class ClusterWatcher:
    """Keeps cluster DNS and volumes current: Services -> dnsmasq hosts file; claims -> hostPath PVs."""

    def __init__(self, kubeconfig: Path, hosts_file: Path, volumes_dir: Path, reload_dns: Callable[[], None]):
        self._client = new_client_from_config(str(kubeconfig))
        self._api = client.CoreV1Api(self._client)
        self.hosts_file, self.volumes_dir, self._reload_dns = hosts_file, volumes_dir, reload_dns
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="node-cluster-watcher", daemon=True)
        self._hosts = ""
        self.errors: list[str] = []

    def start(self) -> None:
        self.sync()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._client.close()

    def sync(self) -> None:
        self._sync_dns()
        self._provision_volumes()
        self._release_volumes()

    def _run(self) -> None:
        while not self._stop.wait(POLL):
            try:
                self.sync()
            except Exception as e:  # the API may be briefly unavailable; keep the last good state
                self.errors.append(repr(e))
                del self.errors[:-20]

    def _sync_dns(self) -> None:
        """A Service's name -> its cluster IP; a headless Service's (clusterIP None, e.g. a StatefulSet's)
        -> the IPs of its ready pods, and each pod's own name <hostname>.<service> as CoreDNS answers."""
        lines = []
        ready = {
            (ep.metadata.namespace, ep.metadata.name): [
                address for subset in ep.subsets or [] for address in subset.addresses or []
            ]
            for ep in self._api.list_endpoints_for_all_namespaces().items
        }
        for svc in self._api.list_service_for_all_namespaces().items:
            ip, name, ns = svc.spec.cluster_ip, svc.metadata.name, svc.metadata.namespace
            if ip and ip != "None":
                lines.append(f"{ip} {name}.{ns}.svc.{CLUSTER_DOMAIN} {name}.{ns}.svc")
                continue
            for address in ready.get((ns, name), []):
                names = [f"{name}.{ns}.svc.{CLUSTER_DOMAIN}", f"{name}.{ns}.svc"]
                if address.hostname:
                    names += [f"{address.hostname}.{n}" for n in names]
                lines.append(f"{address.ip} {' '.join(names)}")
        text = "\n".join(sorted(lines)) + "\n"
        if text != self._hosts:
            tmp = self.hosts_file.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(self.hosts_file)
            self._hosts = text
            self._reload_dns()

    def _provision_volumes(self) -> None:
        existing = {pv.metadata.name for pv in self._api.list_persistent_volume().items}
        for pvc in self._api.list_persistent_volume_claim_for_all_namespaces().items:
            if pvc.status.phase != "Pending" or pvc.spec.volume_name or pvc.spec.storage_class_name:
                continue
            name = f"hostpath-{pvc.metadata.uid}"
            if name in existing:
                continue
            folder = self.volumes_dir / pvc.metadata.uid
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o777)  # pods run as non-root users; hostPath gets no fsGroup ownership change
            pv = client.V1PersistentVolume(
                metadata=client.V1ObjectMeta(name=name, labels={PROVISIONED_LABEL: "node"}),
                spec=client.V1PersistentVolumeSpec(
                    capacity={"storage": pvc.spec.resources.requests["storage"]},
                    access_modes=pvc.spec.access_modes,
                    persistent_volume_reclaim_policy="Retain",
                    storage_class_name="",
                    volume_mode="Filesystem",
                    host_path=client.V1HostPathVolumeSource(path=str(folder), type="Directory"),
                    claim_ref=client.V1ObjectReference(
                        namespace=pvc.metadata.namespace, name=pvc.metadata.name, uid=pvc.metadata.uid
                    ),
                ),
            )
            self._api.create_persistent_volume(pv)

    def _release_volumes(self) -> None:
        """What a provisioner's Delete reclaim policy does: the claim is gone, so are volume and data."""
        for pv in self._api.list_persistent_volume(label_selector=f"{PROVISIONED_LABEL}=node").items:
            if pv.status.phase == "Released":
                self._api.delete_persistent_volume(pv.metadata.name)
                shutil.rmtree(pv.spec.host_path.path, ignore_errors=True)


class Node:
    """Control plane + Docker engine + kubelet + kube-proxy + DNS in a sandbox; start()/stop()."""

    def __init__(
        self,
        workdir: Path,
        *,
        name: str = "node",
        data_root: Path = DOCKER_DIR / "data",
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.sandbox = Sandbox(name, self.workdir / "sandbox")
        self.data_root = Path(data_root)
        self.node_ip = self.sandbox.node_ip
        self.node_name = NODE_NAME
        self.control_plane: ControlPlane | None = None
        self.engine: DockerEngine | None = None
        self.kubeconfig = self.workdir / "admin-host.kubeconfig"
        self.figures: dict[str, float] = {}
        self._procs: dict[str, SandboxProcess] = {}
        self._watcher: ClusterWatcher | None = None
        self._file_servers: list[SandboxProcess] = []

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self, timeout: float = 300) -> Node:
        t0 = time.monotonic()
        try:
            self.sandbox.start()
            prefix = self.sandbox.command_prefix
            self.control_plane = ControlPlane(
                self.workdir / "control-plane",
                bind_address=self.node_ip,
                advertise_address=self.node_ip,
                command_prefix=prefix,
                # the node registers its name and address; the name resolves nowhere
                extra_args={"kube-apiserver": ["--kubelet-preferred-address-types=InternalIP"]},
            )
            self.control_plane.start(timeout=timeout)
            self._write_host_kubeconfig()
            self.figures["control_plane_ready_s"] = time.monotonic() - t0
            t1 = time.monotonic()
            self.engine = DockerEngine(
                self.data_root, self.workdir / "docker", command_prefix=prefix, bridge=True
            )
            self.engine.start(timeout=timeout)
            self._ensure_pause_image()
            self._start_dns()
            self._start_kubelet()
            self._start_kube_proxy()
            self._wait_node_ready(timeout)
            self._wait_kube_proxy(timeout)
            self.figures["node_ready_s"] = time.monotonic() - t1
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything (kubelet first, so it stops restarting pods); safe to call twice."""
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        for server in self._file_servers:
            server.stop()
        self._file_servers.clear()
        for name in ("kubelet", "kube-proxy", "dnsmasq"):
            proc = self._procs.pop(name, None)
            if proc is not None:
                proc.stop()
        if self.engine is not None:
            with contextlib.suppress(Exception):
                self._remove_pod_containers()
            with contextlib.suppress(Exception):
                self.engine.stop()
            self.engine = None
        if self.control_plane is not None:
            with contextlib.suppress(Exception):
                self.control_plane.stop()
            self.control_plane = None
        self.sandbox.stop()

    def __enter__(self) -> Node:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- helpers for tests ------------------------------------------------------------------------
    def kubectl(self, *args: str, check: bool = True, timeout: float = 120, input: str | None = None) -> str:
        """Run kubectl (from the host, through the port bridge) as cluster admin; returns stdout."""
        result = subprocess.run(
            [str(kubectl()), f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            check=False,
        )
        if check and result.returncode != 0:
            raise NodeError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def serve_files(self, folder: Path) -> str:
        """Serve ``folder`` over HTTP on the node address (reachable from pods); returns the base URL."""
        port = FILE_SERVER_PORT + len(self._file_servers)
        server = SandboxProcess(
            f"files-{port}",
            ["python3", "-m", "http.server", "--bind", self.node_ip, str(port), "--directory", str(folder)],
            self.workdir / "logs" / f"files-{port}.log",
            self.sandbox.command_prefix,
        ).start()
        self._file_servers.append(server)
        self._wait(lambda: self.port_open(self.node_ip, port), 30, server)
        return f"http://{self.node_ip}:{port}"

    def port_open(self, host: str, port: int) -> bool:
        """True when something accepts TCP connections on host:port inside the sandbox."""
        probe = subprocess.run(
            [*self.sandbox.command_prefix, "bash", "-c", f"exec 3<>/dev/tcp/{host}/{port}"],
            capture_output=True,
            check=False,
            timeout=30,
        )
        return probe.returncode == 0

    def logs(self) -> dict[str, Path]:
        """Log files of the node's components, for failure messages."""
        found = dict(self.control_plane.logs()) if self.control_plane is not None else {}
        found.update({name: proc.log_path for name, proc in self._procs.items()})
        if self.engine is not None:
            found["dockerd"] = self.engine.dockerd_log
        return found

    def rss(self) -> dict[str, int]:
        """Memory in MiB: resident set of each component process, and each pod's working set (its
        cgroup's usage less inactive file pages: what kubelet compares with limits and evictions)."""
        figures: dict[str, int] = {}
        pids: dict[str, int | None] = {name: proc.pid for name, proc in self._procs.items()}
        if self.control_plane is not None:
            pids.update(self.control_plane.pids())
        if self.engine is not None:
            pids.update(self.engine.pids())
        for name, pid in pids.items():
            if pid is not None:
                figures[name] = _rss_mib(pid)
        memory = Path("/sys/fs/cgroup/memory") / self.sandbox.cgroup_parent.lstrip("/")
        names = self._pod_names_by_uid() if memory.is_dir() else {}
        for folder in memory.rglob("pod*") if names else ():
            name = names.get(folder.name.removeprefix("pod"))
            working_set = _working_set_mib(folder)
            if name is not None and working_set is not None:
                figures[f"pod/{name}"] = working_set
        return figures

    # -- internals --------------------------------------------------------------------------------
    def _write_host_kubeconfig(self) -> None:
        """The admin kubeconfig, pointed at a host port bridged to the API server in the sandbox."""
        assert self.control_plane is not None
        port = self.control_plane.ports["apiserver"]
        host_port = self.sandbox.expose(port, self.node_ip)
        bridged = self.control_plane.admin_kubeconfig_for(f"https://127.0.0.1:{host_port}")
        shutil.copyfile(bridged, self.kubeconfig)
        self.kubeconfig.chmod(0o600)

    def _ensure_pause_image(self) -> None:
        assert self.engine is not None
        if self.engine.docker("images", "-q", PAUSE_IMAGE).strip():
            return
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(kube_binary("pause"), arcname="pause")
        subprocess.run(
            ["docker", "import", "--change", 'ENTRYPOINT ["/pause"]', "-", PAUSE_IMAGE],
            input=buffer.getvalue(),
            env={**os.environ, **self.engine.env()},
            capture_output=True,
            check=True,
            timeout=120,
        )

    def _start_dns(self) -> None:
        dns = self.workdir / "dns"
        dns.mkdir(parents=True, exist_ok=True)
        hosts = dns / "hosts"
        hosts.touch()
        proc = SandboxProcess(
            "dnsmasq",
            [
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--user=root",
                "--pid-file=",
                f"--listen-address={self.node_ip}",
                "--bind-interfaces",
                "--port=53",
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--no-negcache",
                f"--addn-hosts={hosts}",
                f"--local=/{CLUSTER_DOMAIN}/",
                "--log-facility=-",
            ],
            self.workdir / "logs" / "dnsmasq.log",
            self.sandbox.command_prefix,
        ).start()
        self._procs["dnsmasq"] = proc
        self._wait(lambda: self._udp_listening(53), 30, proc)
        self._watcher = ClusterWatcher(
            self.kubeconfig, hosts, self.workdir / "volumes", lambda: proc.signal(signal.SIGHUP)
        )
        self._watcher.start()

    def _start_kubelet(self) -> None:
        assert self.control_plane is not None and self.engine is not None
        kubelet_dir = self.workdir / "kubelet"
        for sub in ("root", "volume-plugins", "dockershim"):
            (kubelet_dir / sub).mkdir(parents=True, exist_ok=True)
        kubeconfig = self.control_plane.kubeconfig_for_user(
            "kubelet", f"system:node:{self.node_name}", ["system:nodes"]
        )
        config: dict[str, Any] = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": self.node_ip,
            "port": KUBELET_PORT,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": 10248,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(self.control_plane.ca_cert)},
            },
            "authorization": {"mode": "AlwaysAllow"},  # only CA-signed clients get in at all
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.sandbox.cgroup_parent,
            "clusterDNS": [self.node_ip],
            "clusterDomain": CLUSTER_DOMAIN,
            "resolvConf": "",  # no host DNS servers leak into pods: there is no way out anyway
            "failSwapOn": False,
            "oomScoreAdj": 0,
            # the shared data root holds the build cache: never garbage-collect images
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
            },
            "serializeImagePulls": False,
            "rotateCertificates": False,
            "syncFrequency": "10s",
            "nodeStatusUpdateFrequency": "5s",
            "containerLogMaxSize": "10Mi",
        }
        config_path = kubelet_dir / "config.yaml"
        config_path.write_text(json.dumps(config, indent=2))
        argv = [
            kube_binary("kubelet"),
            f"--config={config_path}",
            f"--kubeconfig={kubeconfig}",
            f"--root-dir={kubelet_dir / 'root'}",
            f"--cert-dir={kubelet_dir / 'pki'}",
            f"--volume-plugin-dir={kubelet_dir / 'volume-plugins'}",
            f"--hostname-override={self.node_name}",
            f"--node-ip={self.node_ip}",
            "--container-runtime=docker",
            f"--docker-endpoint={self.engine.host}",
            f"--container-runtime-endpoint=unix://{kubelet_dir / 'dockershim.sock'}",
            f"--experimental-dockershim-root-directory={kubelet_dir / 'dockershim'}",
            f"--pod-infra-container-image={PAUSE_IMAGE}",
            "--network-plugin=",
            "--v=2",
        ]
        self._procs["kubelet"] = SandboxProcess(
            "kubelet", argv, self.workdir / "logs" / "kubelet.log", self.sandbox.command_prefix
        ).start()

    def _start_kube_proxy(self) -> None:
        assert self.control_plane is not None
        kubeconfig = self.control_plane.kubeconfig_for_user("kube-proxy", "system:kube-proxy")
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "bindAddress": self.node_ip,
            "healthzBindAddress": "127.0.0.1:10256",
            "metricsBindAddress": "127.0.0.1:10249",
            "clientConnection": {"kubeconfig": str(kubeconfig)},
            "hostnameOverride": self.node_name,
            "clusterCIDR": POD_NETWORK,
            "mode": "iptables",
            "iptables": {"masqueradeAll": True, "syncPeriod": "30s", "minSyncPeriod": "0s"},
            # 0 = leave as is: nf_conntrack_max and the hash size are host-wide
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
            "oomScoreAdj": 0,
            "nodePortAddresses": [f"{self.node_ip}/32"],
        }
        path = self.workdir / "kube-proxy.yaml"
        path.write_text(json.dumps(config, indent=2))
        self._procs["kube-proxy"] = SandboxProcess(
            "kube-proxy",
            [kube_binary("kube-proxy"), f"--config={path}", "--v=2"],
            self.workdir / "logs" / "kube-proxy.log",
            self.sandbox.command_prefix,
        ).start()

    def _wait_node_ready(self, timeout: float) -> None:
        kubelet = self._procs["kubelet"]

        def ready() -> bool:
            out = self.kubectl(
                "get", "node", self.node_name, "-o",
                'jsonpath={.status.conditions[?(@.type=="Ready")].status}', check=False,
            )  # fmt: skip
            return out.strip() == "True"

        self._wait(ready, timeout, kubelet)

    def _wait_kube_proxy(self, timeout: float) -> None:
        """Ready once the kubernetes Service has its iptables rules."""
        proxy = self._procs["kube-proxy"]

        def synced() -> bool:
            rules = subprocess.run(
                [*self.sandbox.command_prefix, "iptables-save", "-t", "nat"], capture_output=True, text=True
            ).stdout
            return "default/kubernetes:https" in rules

        self._wait(synced, timeout, proxy)

    def _udp_listening(self, port: int) -> bool:
        out = subprocess.run(
            [*self.sandbox.command_prefix, "ss", "-Hulnp", f"sport = :{port}"], capture_output=True, text=True
        ).stdout
        return bool(out.strip())

    def _wait(self, ready: Callable[[], bool], timeout: float, proc: SandboxProcess) -> None:
        deadline = time.monotonic() + timeout
        while True:
            proc.check_alive()
            if ready():
                return
            if time.monotonic() > deadline:
                raise NodeError(
                    f"{proc.name} not ready after {timeout:.0f} s; log {proc.log_path}:\n{proc.log_tail()}"
                )
            time.sleep(0.5)

    def _remove_pod_containers(self) -> None:
        """Kubelet is gone: remove the pods' containers, so none outlives the node on the data root."""
        assert self.engine is not None
        ids = self.engine.docker("ps", "-aq", "--filter", "label=io.kubernetes.pod.uid", timeout=60).split()
        if ids:
            self.engine.docker("rm", "-f", *ids, timeout=300)

    def _pod_names_by_uid(self) -> dict[str, str]:
        pods = json.loads(self.kubectl("get", "pods", "-A", "-o", "json", check=False) or '{"items": []}')
        return {
            p["metadata"]["uid"]: f"{p['metadata']['namespace']}/{p['metadata']['name']}"
            for p in pods["items"]
        }


def _rss_mib(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


def _working_set_mib(cgroup: Path) -> int | None:
    try:
        usage = int((cgroup / "memory.usage_in_bytes").read_text())
        stat = dict(line.split() for line in (cgroup / "memory.stat").read_text().splitlines())
    except (OSError, ValueError):
        return None
    return max(usage - int(stat.get("total_inactive_file", 0)), 0) // 2**20
