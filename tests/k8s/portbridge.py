"""Reach a TCP port inside another network namespace from the host's loopback, without routes.

The containers and the kubelet node live in network namespaces that have no link to the root
namespace (nothing may change the host's interfaces or routes). A unix socket crosses namespaces: one
socat runs inside the namespace (nsenter) and forwards the socket to the port there, another listens on a
free 127.0.0.1 port on the host and forwards to the socket.

    with PortBridge("/proc/1234/ns/net", 8000, workdir=tmp) as bridge:
        httpx.get(f"http://127.0.0.1:{bridge.host_port}/health")
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class PortBridgeError(RuntimeError):
    """A socat side exited or the bridge never accepted a connection."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def netns_path(netns: str | os.PathLike[str]) -> str:
    """A namespace name from `ip netns add` (/run/netns/NAME) or any path to a netns file."""
    text = os.fspath(netns)
    return text if "/" in text else f"/run/netns/{text}"


class PortBridge:
    """host 127.0.0.1:<host_port>  ->  unix socket  ->  <target_host>:<port> inside the namespace."""

    def __init__(
        self,
        netns: str | os.PathLike[str],
        port: int,
        *,
        workdir: Path | None = None,
        target_host: str = "127.0.0.1",
        host: str = "127.0.0.1",
        host_port: int | None = None,
    ) -> None:
        self.netns = netns_path(netns)
        self.port = port
        self.target_host = target_host
        self.host = host
        self.host_port = host_port or 0
        self._requested_port = host_port
        self._workdir = workdir
        self._tmp: str | None = None
        self._procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[Path] = []
        self.socket_path: Path | None = None

    def start(self, timeout: float = 30) -> int:
        """Start both socat processes; returns the host port once a connection is accepted."""
        if shutil.which("socat") is None:
            raise PortBridgeError("socat is not installed (apt-get install socat)")
        if not os.path.exists(self.netns):
            raise PortBridgeError(f"no network namespace at {self.netns}")
        if self._workdir is None:
            self._tmp = tempfile.mkdtemp(prefix="portbridge-")
            base = Path(self._tmp)
        else:
            base = Path(self._workdir)
            base.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"pb{self.port}-", suffix=".sock", dir=base)
        os.close(fd)
        os.unlink(name)
        self.socket_path = Path(name)
        if len(str(self.socket_path)) > 100:
            raise PortBridgeError(f"unix socket path too long for the kernel: {self.socket_path}")
        target = f"TCP:{self.target_host}:{self.port}"
        inner = [
            "nsenter",
            f"--net={self.netns}",
            "socat",
            f"UNIX-LISTEN:{self.socket_path},fork,unlink-early",
            target,
        ]
        try:
            self._spawn(inner)
            self._wait(
                lambda: self.socket_path is not None and self.socket_path.exists(), timeout, "inner socat"
            )
            for _ in range(5):  # a free port can be taken between the probe and socat's bind: retry
                self.host_port = self._requested_port or free_port(self.host)
                outer = [
                    "socat",
                    f"TCP-LISTEN:{self.host_port},bind={self.host},fork,reuseaddr",
                    f"UNIX-CONNECT:{self.socket_path}",
                ]
                proc = self._spawn(outer)
                try:
                    self._wait(self._listening, timeout, "host socat", proc)
                    break
                except PortBridgeError:
                    if self._requested_port or proc.poll() is None:
                        raise
                    self._logs.pop(self._procs.index(proc))
                    self._procs.remove(proc)
            else:
                raise PortBridgeError("no free host port could be bound")
        except BaseException:
            self.stop()
            raise
        return self.host_port

    def stop(self) -> None:
        """Stop both sides (their forked children too) and remove the socket."""
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self._procs.clear()
        for log in self._logs:
            log.unlink(missing_ok=True)
        self._logs.clear()
        if self.socket_path is not None:
            self.socket_path.unlink(missing_ok=True)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> PortBridge:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.host_port}"

    def _spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        assert self.socket_path is not None
        log = self.socket_path.with_suffix(f".{len(self._procs)}.log")
        with open(log, "wb") as out:  # a file, not a pipe: a long-lived socat must never block on stderr
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=out, start_new_session=True
            )
        self._procs.append(proc)
        self._logs.append(log)
        return proc

    def _listening(self) -> bool:
        with socket.socket() as s:
            s.settimeout(2)
            return s.connect_ex((self.host, self.host_port)) == 0

    def _wait(
        self, ready: object, timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None
    ) -> None:
        proc = proc or self._procs[-1]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log = self._logs[self._procs.index(proc)]
                err = log.read_text(errors="replace") if log.exists() else ""
                raise PortBridgeError(f"{what} exited with {proc.returncode}: {err.strip()}")
            if callable(ready) and ready():
                return
            time.sleep(0.1)
        raise PortBridgeError(f"{what} not ready within {timeout:.0f} s")
