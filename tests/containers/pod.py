"""A pod made of Docker containers: one network namespace shared by all, reached through port bridges.

The first container only holds the network namespace (`--network none`, as a pod's pause container
does); every other one joins it with `--network container:<first>`, so they reach each other on
127.0.0.1 and no bridge, iptables rule or published port is needed in the root namespace. The host
reaches ports inside through tests.k8s.portbridge (a unix socket and two socat processes).
Every container carries a label, and remove() deletes them all (also leftovers of a killed run).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.containers.chartpod import ContainerRun
from tests.k8s.docker_engine import DockerEngine, EngineError
from tests.k8s.portbridge import PortBridge

LABEL = "btcf.test=containers"


class PodError(AssertionError):
    """A container exited, failed, or never became ready; the message holds its log tail."""


class Pod:
    def __init__(self, engine: DockerEngine, workdir: Path, *, name: str = "btcf-ct") -> None:
        self.engine = engine
        self.workdir = workdir
        self.name = f"{name}-{secrets.token_hex(3)}"
        self.sandbox: str | None = None
        self.netns: str | None = None
        self.containers: list[str] = []
        self._bridges: dict[int, PortBridge] = {}

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, image: str, *, user: str = "10001:10001") -> None:
        """Start the namespace holder (a sleeping Python of `image`, read-only, no capabilities)."""
        self.sandbox = f"{self.name}-sandbox"
        self.engine.docker(
            "run", "--detach", "--name", self.sandbox, "--label", LABEL, "--network", "none",
            "--user", user, "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--entrypoint", "python", image, "-c", "import signal; signal.pause()",
        )  # fmt: skip
        self.containers.append(self.sandbox)
        pid = self.engine.docker("inspect", "-f", "{{.State.Pid}}", self.sandbox).strip()
        self.netns = f"/proc/{pid}/ns/net"

    def remove(self) -> None:
        for bridge in self._bridges.values():
            bridge.stop()
        self._bridges.clear()
        for name in reversed(self.containers):
            self.engine.docker("rm", "--force", "--volumes", name, check=False)
        self.containers.clear()

    # -- containers ------------------------------------------------------------------------------
    def container_name(self, name: str) -> str:
        return f"{self.name}-{name}"

    def run(self, name: str, run: ContainerRun, *, detach: bool = True, image: str | None = None) -> str:
        """docker run the chart container `run` in the pod's network namespace; returns its name."""
        assert self.sandbox is not None, "start() the pod first"
        cname = self.container_name(name)
        self.containers.append(cname)
        self.engine.docker(
            "create", "--name", cname, "--label", LABEL, "--network", f"container:{self.sandbox}",
            *run.docker_args(), image or run.image, *run.command_line(),
        )  # fmt: skip
        self.engine.docker("start", cname)
        return cname

    def run_image(self, name: str, image: str, *docker_args: str, command: Sequence[str] = ()) -> str:
        """docker run an image as it is (its own user, entrypoint and command unless given) in the pod."""
        assert self.sandbox is not None, "start() the pod first"
        cname = self.container_name(name)
        self.containers.append(cname)
        self.engine.docker(
            "run", "--detach", "--name", cname, "--label", LABEL, "--network", f"container:{self.sandbox}",
            *docker_args, image, *command,
        )  # fmt: skip
        return cname

    def run_to_completion(self, name: str, run: ContainerRun, *, timeout: float) -> str:
        """Run a Job's container until it exits; its log, or PodError when it exits non-zero."""
        cname = self.run(name, run)
        deadline = time.monotonic() + timeout
        while self.state(cname)["Running"]:
            if time.monotonic() > deadline:
                raise PodError(f"{cname} still runs after {timeout:.0f} s:\n{self.logs(cname)}")
            time.sleep(2)
        code = self.state(cname)["ExitCode"]
        log = self.logs(cname, tail=None)
        if code != 0:
            raise PodError(f"{cname} exited with {code}:\n{_tail(log)}")
        return log

    def state(self, cname: str) -> dict:
        return json.loads(self.engine.docker("inspect", "-f", "{{json .State}}", cname))

    def logs(self, cname: str, tail: int | None = 60) -> str:
        args = ["logs", *(["--tail", str(tail)] if tail else []), cname]
        with contextlib.suppress(EngineError, OSError):
            result = self.engine.docker_result(*args)
            return result.stdout + result.stderr
        return "(no log)"

    def inspect(self, cname: str) -> dict:
        return json.loads(self.engine.docker("inspect", cname))[0]

    # -- the network namespace from the host -----------------------------------------------------
    def bridge(self, port: int) -> PortBridge:
        """A host loopback port forwarded to 127.0.0.1:port inside the pod (started once per port)."""
        if port not in self._bridges:
            assert self.netns is not None, "start() the pod first"
            bridge = PortBridge(self.netns, port, workdir=self.workdir)
            bridge.start()
            self._bridges[port] = bridge
        return self._bridges[port]

    def client(self, port: int, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.bridge(port).url, trust_env=False, **kwargs)  # type: ignore[arg-type]

    def wait_ready(self, cname: str, run: ContainerRun, *, timeout: float) -> None:
        """Poll the container's readinessProbe (httpGet; tcpSocket as any HTTP answer) until it passes."""
        probe = run.readiness or {}
        if "httpGet" in probe:
            port, path, any_answer = probe["httpGet"]["port"], probe["httpGet"].get("path", "/"), False
        elif "tcpSocket" in probe:
            port, path, any_answer = probe["tcpSocket"]["port"], "/", True
        else:
            port, path, any_answer = next(iter(run.ports.values())), "/", True
        number = run.ports[port] if isinstance(port, str) and not port.isdigit() else int(port)
        self.wait_http(cname, number, path, timeout=timeout, any_answer=any_answer)

    def wait_http(
        self, cname: str, port: int, path: str, *, timeout: float, any_answer: bool = False
    ) -> None:
        """Poll GET path on port inside the pod until it answers below 400 (any answer: any status)."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        with self.client(port, timeout=10) as client:
            while True:
                if not self.state(cname)["Running"]:
                    raise PodError(f"{cname} exited ({self.state(cname)['ExitCode']}):\n{self.logs(cname)}")
                try:
                    response = client.get(path)
                    if any_answer or response.status_code < 400:
                        return
                    last = f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as e:
                    last = repr(e)
                if time.monotonic() > deadline:
                    raise PodError(f"{cname} not ready after {timeout:.0f} s ({last}):\n{self.logs(cname)}")
                time.sleep(1)


def remove_labelled(engine: DockerEngine) -> None:
    """Remove every container of the container tests (leftovers of an interrupted run included)."""
    ids = engine.docker("ps", "--all", "--quiet", "--filter", f"label={LABEL}", check=False).split()
    if ids:
        engine.docker("rm", "--force", "--volumes", *ids, check=False)


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])
