"""A real Kubernetes v1.20.2 control plane for the tests: etcd, kube-apiserver, controller-manager, scheduler.

The binaries come from ``scripts/kube/build.sh``. Everything an ordinary cluster enforces is on:
client-certificate authentication, ``Node,RBAC`` authorization, ServiceAccount tokens signed by our
own key (the token controller creates the 1.20 token Secrets), admission, and the real controllers
(Deployment -> ReplicaSet -> Pod). etcd speaks TLS with client certificates too.

On the host every component listens on 127.0.0.1 on free ports. With ``command_prefix`` (e.g. a
Sandbox's nsenter into its network + mount namespace) the whole control plane runs inside that
namespace: the apiserver binds ``bind_address`` (the node's IP), ports are the usual defaults since
the namespace is private, and readiness is probed from inside it. Every process runs in its own
process group and is killed on stop(), on errors while starting and at interpreter exit.

Developers: ``python -m tests.k8s.controlplane [workdir]`` starts one and prints its kubeconfig.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import ipaddress
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from btcforecast.devservers.process import free_ports
from tests.k8s import kubeconfig as kc
from tests.k8s.paths import kube_binary
from tests.k8s.pki import CertificateAuthority, KeyPair, service_account_keys

SERVICE_CIDR = "10.96.0.0/12"
KUBERNETES_SERVICE_IP = "10.96.0.1"
CLUSTER_DOMAIN = "cluster.local"
SERVICE_ACCOUNT_ISSUER = f"https://kubernetes.default.svc.{CLUSTER_DOMAIN}"
# Inside a private network namespace nothing else can hold these ports.
DEFAULT_PORTS = {
    "etcd": 2379,
    "etcd-peer": 2380,
    "apiserver": 6443,
    "controller-manager": 10257,
    "scheduler": 10259,
}
LOOPBACK = "127.0.0.1"
GRACE = 10.0
_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
_live: dict[int, _Component] = {}

# Readiness probe, run in this process or (with a command prefix) inside the namespace.
_PROBE = """
import ssl, sys, urllib.request
url, ca, cert, key = sys.argv[1:5]
context = ssl.create_default_context(cafile=ca)
context.load_cert_chain(cert, key)
handlers = urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
opener = urllib.request.build_opener(*handlers)
try:
    with opener.open(url, timeout=3) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as e:
    print(e)
    sys.exit(1)
"""


class ControlPlaneError(RuntimeError):
    """A component exited or did not become healthy while starting."""


def environment_without_proxies() -> dict[str, str]:
    """This process's environment without proxy settings: cluster traffic never leaves the machine."""
    return {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}


class _Component:
    """One control-plane process in its own process group, logging to a file."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=environment_without_proxies(),
                start_new_session=True,
            )
        _live[self.proc.pid] = self

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self, grace: float = GRACE) -> None:
        """SIGTERM the group, SIGKILL it after ``grace``; safe to call twice."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # also whatever it left in its group
        proc.wait()
        _live.pop(proc.pid, None)


@atexit.register
def _kill_leftovers() -> None:
    for component in list(_live.values()):
        with contextlib.suppress(Exception):
            component.stop(grace=0)


def _probe_here(url: str, ca: Path, pair: KeyPair) -> bool:
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(pair.cert), str(pair.key))
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(url, timeout=3) as response:
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException):  # not up yet, or not healthy
        return False


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler, files under ``workdir``.

    ``server`` is the API's https URL as seen where the control plane runs (inside the namespace when
    ``command_prefix`` is given: use ``admin_kubeconfig_for(server)`` with a bridged port from the host).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        bind_address: str = LOOPBACK,
        advertise_address: str | None = None,
        command_prefix: Sequence[str] = (),
        extra_args: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.bind_address = bind_address
        self.advertise_address = advertise_address or (
            bind_address if bind_address not in ("0.0.0.0", "::") else LOOPBACK
        )
        self.command_prefix = list(command_prefix)
        self.extra_args = {name: list(args) for name, args in (extra_args or {}).items()}
        self.cert_dir = self.workdir / "pki"
        self.log_dir = self.workdir / "logs"
        self.kubeconfig_dir = self.workdir / "kubeconfigs"
        if self.command_prefix:
            self.ports = dict(DEFAULT_PORTS)
        else:
            self.ports = dict(zip(DEFAULT_PORTS, free_ports(len(DEFAULT_PORTS)), strict=True))
        host = self.advertise_address if bind_address in ("0.0.0.0", "::") else bind_address
        self.server = f"https://{host}:{self.ports['apiserver']}"
        self.timings: dict[str, float] = {}
        self._components: list[_Component] = []
        self._make_pki()

    # -- files --------------------------------------------------------------------------------
    def _make_pki(self) -> None:
        self.ca = CertificateAuthority(self.cert_dir)
        self.ca_cert = self.ca.cert_path
        ca = self.ca
        local_ips = [LOOPBACK, self.bind_address, self.advertise_address]
        local_ips = [ip for ip in dict.fromkeys(local_ips) if ip not in ("0.0.0.0", "::")]
        self.apiserver_pair = ca.issue(
            "apiserver",
            common_name="kube-apiserver",
            dns_names=[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                f"kubernetes.default.svc.{CLUSTER_DOMAIN}",
            ],
            ip_addresses=[*local_ips, KUBERNETES_SERVICE_IP],
            server=True,
            client=False,
        )
        self.etcd_pair = ca.issue(
            "etcd", common_name="etcd", dns_names=["localhost"], ip_addresses=[LOOPBACK], server=True
        )
        self.etcd_client_pair = ca.issue("apiserver-etcd-client", common_name="kube-apiserver-etcd-client")
        self.kubelet_client_pair = ca.issue(
            "apiserver-kubelet-client",
            common_name="kube-apiserver-kubelet-client",
            organizations=["system:masters"],
        )
        self.admin_pair = ca.issue("admin", common_name="kubernetes-admin", organizations=["system:masters"])
        self.controller_manager_pair = ca.issue(
            "controller-manager",
            common_name="system:kube-controller-manager",
            dns_names=["localhost"],
            ip_addresses=[LOOPBACK],
            server=True,
        )
        self.scheduler_pair = ca.issue(
            "scheduler",
            common_name="system:kube-scheduler",
            dns_names=["localhost"],
            ip_addresses=[LOOPBACK],
            server=True,
        )
        # the aggregation layer's front proxy: its own CA, as kubeadm sets it up
        self.front_proxy_ca = CertificateAuthority(self.cert_dir / "front-proxy", "btcf-test-front-proxy-ca")
        self.front_proxy_client_pair = self.front_proxy_ca.issue(
            "front-proxy-client", common_name="front-proxy-client"
        )
        self.service_account_pair = service_account_keys(self.cert_dir)
        self.admin_kubeconfig = self._client_kubeconfig("admin", "kubernetes-admin", self.admin_pair)
        self._controller_manager_kubeconfig = self._client_kubeconfig(
            "controller-manager", "system:kube-controller-manager", self.controller_manager_pair
        )
        self._scheduler_kubeconfig = self._client_kubeconfig(
            "scheduler", "system:kube-scheduler", self.scheduler_pair
        )

    def _client_kubeconfig(self, name: str, user: str, pair: KeyPair, server: str | None = None) -> Path:
        return kc.write_kubeconfig(
            self.kubeconfig_dir / f"{name}.yaml",
            server=server or self.server,
            ca_data=self.ca_cert.read_bytes(),
            user=user,
            client_cert=pair.cert,
            client_key=pair.key,
        )

    def kubeconfig_for_user(
        self, name: str, common_name: str, organizations: Sequence[str] = (), *, server: str | None = None
    ) -> Path:
        """A client-certificate kubeconfig for any identity (e.g. ``system:node:<n>`` in ``system:nodes``)."""
        pair = self.ca.issue(f"user-{name}", common_name=common_name, organizations=organizations)
        return self._client_kubeconfig(f"user-{name}", common_name, pair, server)

    def admin_kubeconfig_for(self, server: str) -> Path:
        """The admin kubeconfig pointing at ``server`` (e.g. the host end of a bridged port)."""
        target = self.kubeconfig_dir / f"admin-{server.split('://')[-1].replace(':', '-')}.yaml"
        return kc.with_server(self.admin_kubeconfig, target, server)

    def kubectl_command(self, kubeconfig: Path | None = None) -> list[str]:
        """argv prefix for kubectl against this control plane (inside the namespace, if any)."""
        return kc.kubectl_command(kubeconfig or self.admin_kubeconfig, self.command_prefix)

    def kubeconfig_for_serviceaccount(self, namespace: str, name: str, *, server: str | None = None) -> Path:
        """Wait for the ServiceAccount's token Secret (the token controller makes it) and write a
        kubeconfig holding only that token: RBAC decides what it may do."""
        token, _ = kc.service_account_token(self.kubectl_command(), namespace, name)
        return kc.write_kubeconfig(
            self.kubeconfig_dir / f"sa-{namespace}-{name}.yaml",
            server=server or self.server,
            ca_data=self.ca_cert.read_bytes(),
            user=f"system:serviceaccount:{namespace}:{name}",
            token=token,
            namespace=namespace,
        )

    # -- processes ------------------------------------------------------------------------------
    def _argv(self, name: str, *args: str) -> list[str]:
        return [*self.command_prefix, str(kube_binary(name)), *args, *self.extra_args.get(name, [])]

    def _etcd(self) -> _Component:
        client, peer = (
            f"https://{LOOPBACK}:{self.ports['etcd']}",
            f"https://{LOOPBACK}:{self.ports['etcd-peer']}",
        )
        cert, key, ca = self.etcd_pair.cert, self.etcd_pair.key, self.ca_cert
        argv = self._argv(
            "etcd",
            "--name=btcf",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=btcf={peer}",
            "--initial-cluster-state=new",
            f"--cert-file={cert}",
            f"--key-file={key}",
            f"--trusted-ca-file={ca}",
            "--client-cert-auth=true",
            f"--peer-cert-file={cert}",
            f"--peer-key-file={key}",
            f"--peer-trusted-ca-file={ca}",
            "--peer-client-cert-auth=true",
            "--logger=zap",
        )
        return _Component("etcd", argv, self.log_dir / "etcd.log")

    def _apiserver(self) -> _Component:
        argv = self._argv(
            "kube-apiserver",
            f"--bind-address={self.bind_address}",
            f"--advertise-address={self.advertise_address}",
            f"--secure-port={self.ports['apiserver']}",
            "--insecure-port=0",
            f"--etcd-servers=https://{LOOPBACK}:{self.ports['etcd']}",
            f"--etcd-cafile={self.ca_cert}",
            f"--etcd-certfile={self.etcd_client_pair.cert}",
            f"--etcd-keyfile={self.etcd_client_pair.key}",
            f"--client-ca-file={self.ca_cert}",
            f"--tls-cert-file={self.apiserver_pair.cert}",
            f"--tls-private-key-file={self.apiserver_pair.key}",
            f"--kubelet-client-certificate={self.kubelet_client_pair.cert}",
            f"--kubelet-client-key={self.kubelet_client_pair.key}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={self.service_account_pair.cert}",
            f"--service-account-signing-key-file={self.service_account_pair.key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--requestheader-client-ca-file={self.front_proxy_ca.cert_path}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={self.front_proxy_client_pair.cert}",
            f"--proxy-client-key-file={self.front_proxy_client_pair.key}",
            f"--cert-dir={self.cert_dir / 'generated'}",
            "--profiling=false",
            # Endpoints refuse loopback addresses: no `kubernetes` Service endpoints on the host
            *(
                ["--endpoint-reconciler-type=none"]
                if ipaddress.ip_address(self.advertise_address).is_loopback
                else []
            ),
        )
        return _Component("kube-apiserver", argv, self.log_dir / "kube-apiserver.log")

    def _controller_manager(self) -> _Component:
        config = self._controller_manager_kubeconfig
        argv = self._argv(
            "kube-controller-manager",
            f"--kubeconfig={config}",
            f"--authentication-kubeconfig={config}",
            f"--authorization-kubeconfig={config}",
            f"--bind-address={LOOPBACK}",
            f"--secure-port={self.ports['controller-manager']}",
            "--port=0",
            f"--tls-cert-file={self.controller_manager_pair.cert}",
            f"--tls-private-key-file={self.controller_manager_pair.key}",
            "--use-service-account-credentials=true",
            "--leader-elect=false",
            f"--service-account-private-key-file={self.service_account_pair.key}",
            f"--root-ca-file={self.ca_cert}",
            f"--cluster-signing-cert-file={self.ca_cert}",
            f"--cluster-signing-key-file={self.ca.key_path}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--profiling=false",
        )
        return _Component("kube-controller-manager", argv, self.log_dir / "kube-controller-manager.log")

    def _scheduler(self) -> _Component:
        config = self._scheduler_kubeconfig
        argv = self._argv(
            "kube-scheduler",
            f"--kubeconfig={config}",
            f"--authentication-kubeconfig={config}",
            f"--authorization-kubeconfig={config}",
            f"--bind-address={LOOPBACK}",
            f"--secure-port={self.ports['scheduler']}",
            "--port=0",
            f"--tls-cert-file={self.scheduler_pair.cert}",
            f"--tls-private-key-file={self.scheduler_pair.key}",
            "--leader-elect=false",
            "--profiling=false",
        )
        return _Component("kube-scheduler", argv, self.log_dir / "kube-scheduler.log")

    def _probe(self, url: str, pair: KeyPair) -> bool:
        if not self.command_prefix:
            return _probe_here(url, self.ca_cert, pair)
        argv = [
            *self.command_prefix,
            sys.executable,
            "-c",
            _PROBE,
            url,
            str(self.ca_cert),
            str(pair.cert),
            str(pair.key),
        ]
        try:
            return subprocess.run(argv, capture_output=True, timeout=10, check=False).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def _start_and_wait(self, component: _Component, url: str, pair: KeyPair, deadline: float) -> None:
        component.start()
        self._components.append(component)
        while not self._probe(url, pair):
            code = component.exited()
            if code is not None:
                raise ControlPlaneError(f"{component.name} exited with code {code}:\n{component.log_tail()}")
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"{component.name} not healthy at {url}:\n{component.log_tail()}")
            time.sleep(0.25)

    def start(self, timeout: float = 120) -> None:
        """Start all four components in order and return once each reports healthy."""
        if self._components:
            return
        began = time.monotonic()
        deadline = began + timeout
        try:
            self._start_and_wait(
                self._etcd(),
                f"https://{LOOPBACK}:{self.ports['etcd']}/health",
                self.etcd_client_pair,
                deadline,
            )
            self.timings["etcd"] = time.monotonic() - began
            self._start_and_wait(self._apiserver(), f"{self.server}/readyz", self.admin_pair, deadline)
            self.timings["readyz"] = time.monotonic() - began
            for component, port, pair in (
                (self._controller_manager(), self.ports["controller-manager"], self.controller_manager_pair),
                (self._scheduler(), self.ports["scheduler"], self.scheduler_pair),
            ):
                self._start_and_wait(component, f"https://{LOOPBACK}:{port}/healthz", pair, deadline)
            self.timings["controllers"] = time.monotonic() - began
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop scheduler, controller-manager, apiserver, etcd (in that order); safe to call twice."""
        while self._components:
            self._components.pop().stop()

    def pids(self) -> dict[str, int | None]:
        """Process id of each component started so far (for memory figures)."""
        return {c.name: c.proc.pid if c.proc is not None else None for c in self._components}

    def logs(self) -> dict[str, Path]:
        """Log file of each component started so far."""
        return {c.name: c.log_path for c in self._components}

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str]) -> int:
    """Start a control plane (in ``argv[0]`` or a temporary folder) and keep it until Ctrl-C."""
    workdir = Path(argv[0]) if argv else Path(tempfile.mkdtemp(prefix="btcf-kube-"))
    began = time.monotonic()
    plane = ControlPlane(workdir)
    with plane:
        print(
            f"API ready (/readyz) after {plane.timings['readyz']:.1f} s; controllers after "
            f"{plane.timings['controllers']:.1f} s",
            flush=True,
        )
        kc.service_account_token(plane.kubectl_command(), "default", "default")
        print(f"first ServiceAccount token after {time.monotonic() - began:.1f} s", flush=True)
        print(
            f"server:     {plane.server}\nkubeconfig: {plane.admin_kubeconfig}\nlogs:       {plane.log_dir}"
        )
        print(
            f"try:        KUBECONFIG={plane.admin_kubeconfig} kubectl get --raw /readyz?verbose", flush=True
        )
        print("Ctrl-C stops it.", flush=True)
        signal.signal(signal.SIGTERM, _interrupt)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
