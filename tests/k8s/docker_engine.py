"""A private Docker engine (dockerd + its own containerd) that leaves the host alone.

No registry can be reached here and the host's network settings must not change, so the tests and
`make images` run an engine of their own: data root in the cache (image layers survive between runs),
exec root, pid files and sockets under a run folder, and in the root network namespace
`--iptables=false --ip-masq=false --ip-forward=false --bridge=none` (containers use `--network none` or
`container:<id>`, builds `--network host`). Inside a network + mount namespace of our own
(`command_prefix`, e.g. nsenter into tests.k8s.sandbox) `bridge=True` gives the usual docker0 bridge,
which is what kubelet's dockershim expects.

containerd is started by us rather than by dockerd: dockerd adopts any containerd listening on
/run/containerd/containerd.sock, which would escape our mount namespace. A small runc wrapper is the
default runtime: root here lacks CAP_SYS_RESOURCE, so it clamps negative `oomScoreAdj` (kubelet asks
-998 for sandboxes) to 0 before runc sees the bundle.

One engine per data root: start() stops a previous engine of ours on the same data root (recorded in
`<data_root>.engine.json`) before it starts, under a lock file.

    python -m tests.k8s.docker_engine start   # prints DOCKER_HOST=unix://...; the engine keeps running
    python -m tests.k8s.docker_engine stop
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "btc-forecast"
DOCKER_DIR = CACHE_DIR / "docker"

RUNC_WRAPPER = """#!/usr/bin/python3
# runc wrapper (tests/k8s/docker_engine.py): clamp a negative oomScoreAdj to 0 before runc applies it.
import json, os, sys

RUNC = {runc!r}
args = sys.argv[1:]
if "create" in args or "run" in args:
    bundle = "."
    for i, a in enumerate(args):
        if a in ("--bundle", "-b") and i + 1 < len(args):
            bundle = args[i + 1]
        elif a.startswith("--bundle="):
            bundle = a.split("=", 1)[1]
    path = os.path.join(bundle, "config.json")
    try:
        with open(path) as f:
            spec = json.load(f)
        if spec.get("process", {{}}).get("oomScoreAdj", 0) < 0:
            spec["process"]["oomScoreAdj"] = 0
            with open(path + ".tmp", "w") as f:
                json.dump(spec, f)
            os.replace(path + ".tmp", path)
    except OSError:
        pass
os.execv(RUNC, [RUNC] + args)
"""


class EngineError(RuntimeError):
    """The engine did not start or answer; the message names its log."""


def _alive(pid: int, marker: str) -> bool:
    """True when pid runs a process whose command line mentions marker (guards against reused pids)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return marker in cmdline


def _terminate(pid: int, marker: str, timeout: float) -> None:
    """SIGTERM pid's process group, wait up to timeout, then SIGKILL it."""
    if not _alive(pid, marker):
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not _alive(pid, marker):
                return
            time.sleep(0.2)


class DockerEngine:
    """dockerd + containerd with their own data root and sockets; start()/stop() or a context manager."""

    def __init__(
        self,
        data_root: Path,
        run_dir: Path,
        *,
        command_prefix: Sequence[str] = (),
        bridge: bool = False,
        extra_args: Sequence[str] = (),
    ) -> None:
        if bridge and not command_prefix:
            raise ValueError(
                "bridge=True changes iptables and sysctls: only inside a namespace (command_prefix)"
            )
        self.data_root = Path(data_root).resolve()
        self.run_dir = Path(run_dir).resolve()
        self.command_prefix = list(command_prefix)
        self.bridge = bridge
        self.extra_args = list(extra_args)
        self.socket = self.run_dir / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.containerd_socket = self.run_dir / "containerd" / "containerd.sock"
        self.dockerd_log = self.run_dir / "dockerd.log"
        self.containerd_log = self.run_dir / "containerd.log"
        self.owner_file = self.data_root.with_name(self.data_root.name + ".engine.json")
        self.lock_file = self.data_root.with_name(self.data_root.name + ".lock")
        self._pids: dict[str, int] = {}

    # -- public API -------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """What a docker CLI needs to talk to this engine (legacy builder: no buildx here)."""
        return {"DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "0"}

    def start(self, timeout: float = 120) -> None:
        with self._locked():
            stop_recorded_engine(self.data_root)
            for path in (self.run_dir, self.data_root, self.run_dir / "containerd"):
                path.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                self.socket.unlink()
            try:
                self._start_containerd(timeout)
                self._start_dockerd(timeout)
            except BaseException:
                self._stop_pids()
                raise

    def stop(self) -> None:
        with self._locked():
            self._stop_pids()
            if _recorded_host_is(self):  # started by another process with the same run folder
                stop_recorded_engine(self.data_root)

    def __enter__(self) -> DockerEngine:
        self.start()
        return self

    def pids(self) -> dict[str, int]:
        """The engine's processes this object started (containerd, dockerd), by name."""
        return dict(self._pids)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def docker_result(self, *args: str, timeout: float | None = 600) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI against this engine; the completed process (exit code, stdout, stderr)."""
        return subprocess.run(
            ["docker", *args],
            env={**os.environ, **self.env()},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def docker(self, *args: str, check: bool = True, timeout: float | None = 600) -> str:
        """Run the docker CLI against this engine; returns stdout (raises with stderr on failure)."""
        result = self.docker_result(*args, timeout=timeout)
        if check and result.returncode != 0:
            raise EngineError(
                f"docker {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}"
            )
        return result.stdout

    def ping(self) -> bool:
        """True when dockerd answers GET /_ping on its socket."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect(str(self.socket))
                s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                reply = s.recv(4096)
        except OSError:
            return False
        return reply.startswith(b"HTTP/1.") and reply.rstrip().endswith(b"OK")

    # -- internals --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _spawn(self, name: str, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [*self.command_prefix, *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() can end it and its children
            )
        self._pids[name] = proc.pid
        self._record()
        return proc

    def _record(self) -> None:
        record = {
            "pids": self._pids,
            "host": self.host,
            "run_dir": str(self.run_dir),
            "data_root": str(self.data_root),
        }
        self.owner_file.write_text(json.dumps(record))

    def _wait(self, proc: subprocess.Popen[bytes], ready: Any, what: str, log: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise EngineError(f"{what} exited with {proc.returncode}; log {log}:\n{_tail(log)}")
            if ready():
                return
            time.sleep(0.2)
        raise EngineError(f"{what} did not answer within {timeout:.0f} s; log {log}:\n{_tail(log)}")

    def _start_containerd(self, timeout: float) -> None:
        state = self.run_dir / "containerd"
        config = self.run_dir / "containerd.toml"
        config.write_text(
            "\n".join(
                [
                    "version = 2",
                    f'root = "{self.data_root / "containerd" / "daemon"}"',
                    f'state = "{state / "daemon"}"',
                    "oom_score = 0",
                    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
                    "[grpc]",
                    f'  address = "{self.containerd_socket}"',
                    "[ttrpc]",
                    f'  address = "{self.containerd_socket}.ttrpc"',
                    "[debug]",
                    f'  address = "{state / "debug.sock"}"',
                    '  level = "warn"',
                    "[metrics]",
                    '  address = ""',
                    '[plugins."io.containerd.internal.v1.opt"]',
                    f'  path = "{self.data_root / "containerd" / "opt"}"',
                    "",
                ]
            )
        )
        with contextlib.suppress(FileNotFoundError):
            self.containerd_socket.unlink()
        proc = self._spawn("containerd", ["containerd", "--config", str(config)], self.containerd_log)
        self._wait(proc, self.containerd_socket.exists, "containerd", self.containerd_log, timeout)

    def _start_dockerd(self, timeout: float) -> None:
        runc = shutil.which("runc") or "/usr/sbin/runc"
        wrapper = self.run_dir / "runc-clamp-oom"
        wrapper.write_text(RUNC_WRAPPER.format(runc=runc))
        wrapper.chmod(0o755)
        config = self.run_dir / "daemon.json"
        config.write_text(
            json.dumps(
                {
                    "runtimes": {"btcf-runc": {"path": str(wrapper)}},
                    "default-runtime": "btcf-runc",
                    "storage-driver": "overlay2",
                    "shutdown-timeout": 10,
                    "log-driver": "json-file",
                    "log-opts": {"max-size": "10m", "max-file": "2"},
                },
                indent=2,
            )
        )
        if self.bridge:
            network = ["--iptables=true", "--ip-masq=true", "--ip-forward=true"]
        else:
            network = [
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--ip-forward=false",
                "--bridge=none",
            ]
        argv = [
            "dockerd",
            "--config-file", str(config),
            "--data-root", str(self.data_root),
            "--exec-root", str(self.run_dir / "exec"),
            "--pidfile", str(self.run_dir / "docker.pid"),
            "--host", self.host,
            "--containerd", str(self.containerd_socket),
            "--oom-score-adjust", "0",
            *network,
            *self.extra_args,
        ]  # fmt: skip
        proc = self._spawn("dockerd", argv, self.dockerd_log)
        self._wait(proc, self.ping, "dockerd", self.dockerd_log, timeout)

    def _stop_pids(self) -> None:
        markers = {"dockerd": str(self.data_root), "containerd": str(self.run_dir)}
        for name in ("dockerd", "containerd"):
            pid = self._pids.pop(name, None)
            if pid is not None:
                _terminate(pid, markers[name], timeout=60)
        with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
            if json.loads(self.owner_file.read_text())["run_dir"] == str(self.run_dir):
                self.owner_file.unlink()


def stop_recorded_engine(data_root: Path) -> bool:
    """Stop the engine of ours recorded for data_root, if one still runs. True when one was stopped."""
    data_root = Path(data_root).resolve()
    owner = data_root.with_name(data_root.name + ".engine.json")
    try:
        record = json.loads(owner.read_text())
    except (OSError, ValueError):
        return False
    pids = record.get("pids", {})
    stopped = False
    markers = {"dockerd": str(data_root), "containerd": record.get("run_dir", "")}
    for name in ("dockerd", "containerd"):
        pid = pids.get(name)
        if pid and markers[name] and _alive(pid, markers[name]):
            _terminate(pid, markers[name], timeout=60)
            stopped = True
    owner.unlink(missing_ok=True)
    return stopped


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def build_engine() -> DockerEngine:
    """The root-namespace engine on the shared data root: builds and the container tests."""
    return DockerEngine(DOCKER_DIR / "data", DOCKER_DIR / "run")


def main(argv: Sequence[str] | None = None) -> int:
    """`start` (default) leaves the build engine running and prints DOCKER_HOST=... and STARTED=0|1
    (1: this call started it); `stop` ends it; `env` prints what a docker CLI needs."""
    args = list(sys.argv[1:] if argv is None else argv) or ["start"]
    engine = build_engine()
    if args[0] == "start":
        started = not engine.ping() or not _recorded_host_is(engine)
        if started:
            engine.start()
        print(f"DOCKER_HOST={engine.host}")
        print(f"STARTED={int(started)}")  # 0: an engine of ours was running there already
        return 0
    if args[0] == "stop":
        stop_recorded_engine(engine.data_root)
        return 0
    if args[0] == "env":
        print(" ".join(f"{k}={v}" for k, v in engine.env().items()))
        return 0
    print("usage: python -m tests.k8s.docker_engine [start|stop|env]", file=sys.stderr)
    return 2


def _recorded_host_is(engine: DockerEngine) -> bool:
    try:
        return json.loads(engine.owner_file.read_text()).get("host") == engine.host
    except (OSError, ValueError):
        return False


if __name__ == "__main__":
    raise SystemExit(main())
