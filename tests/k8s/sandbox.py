"""A network + mount namespace of our own, where a kubelet node may change what it likes.

kubelet, kube-proxy and a bridged dockerd rewrite iptables, create bridges, set sysctls and write
under /var/log: on this machine none of that may touch the host. A Sandbox gives them a place to:

- a network namespace (``ip netns add btcf-<name>``) holding only ``lo`` and the node address (on a
  dummy interface where the kernel has one, else on ``lo``): no veth, no route out, nothing in the root
  namespace changes;
- a private mount namespace, kept alive by a holder process, in which sysfs shows the namespace's own
  interfaces (as ``ip netns exec`` does; the cgroup mounts are carried over), read-only files with the
  values kubelet insists on lie over the host-wide sysctls it would otherwise set (``vm.overcommit_memory``,
  ``kernel.panic``, ``kernel.panic_on_oops``, ...), ``/var/log`` is a folder of the sandbox and
  ``modprobe`` (when the host has one) does nothing;
- a cgroup parent (``cgroup_parent``) for kubelet's pods, so that stop() finds every process the node
  started, even those in containers' own namespaces.

``command_prefix`` runs a command inside both namespaces (nsenter; give it absolute paths: the working
folder becomes ``/``). ``expose(port)`` bridges a port inside the sandbox to a free 127.0.0.1 port of
the host through a unix socket (tests.k8s.portbridge), the only way in from the host. stop() kills
every process of the sandbox, removes its cgroups and deletes the namespace; a sandbox left behind by
a crashed run of the same name is cleaned up by the next start().
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import re
import select
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from tests.k8s.portbridge import PortBridge

CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "btc-forecast"
LOCK_DIR = CACHE_DIR / "sandbox"
NETNS_DIR = Path("/run/netns")
CGROUP_ROOT = Path("/sys/fs/cgroup")
DEFAULT_NODE_IP = "10.201.0.1"

# What kubelet's container manager wants (setupKernelTunables): with these values in place it leaves
# the files alone; with anything else it would write the host's /proc/sys (or fail on read-only files).
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}
MODPROBE_PATHS = ("/usr/sbin/modprobe", "/sbin/modprobe")

# Runs as the holder: unshare gave it a private mount namespace, nsenter the network namespace.
HOLDER_SCRIPT = """set -eu
work=$1
# sysfs as seen from the network namespace, with the host's cgroup mounts kept underneath
mkdir -p "$work/cgroup"
mount --rbind /sys/fs/cgroup "$work/cgroup"
mount -t sysfs sysfs /sys
mount --move "$work/cgroup" /sys/fs/cgroup
# host-wide sysctls kubelet would set: read-only files holding the values it wants
for f in "$work"/sysctl/*; do
  target=/proc/sys/$(basename "$f" | tr . /)
  [ -e "$target" ] || continue
  mount --bind "$f" "$target"
  mount -o remount,bind,ro "$target"
done
mount --bind "$work/var-log" /var/log
for m in {modprobe}; do
  [ -e "$m" ] && mount --bind /bin/true "$m"
done
echo ready
exec sleep infinity
"""


_started: set[Sandbox] = set()


@atexit.register
def _stop_leftovers() -> None:
    """An interpreter that exits without stop() still takes its sandboxes (and what runs in them) along."""
    for sandbox in list(_started):
        with contextlib.suppress(Exception):
            sandbox.stop()


class SandboxError(RuntimeError):
    """The sandbox could not be set up, or another live run holds its name."""


class Sandbox:
    """Network + private mount namespace for a kubelet node; start()/stop() or a context manager."""

    def __init__(self, name: str, workdir: Path, *, node_ip: str = DEFAULT_NODE_IP) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,8}", name):  # "btcf-" + name: a netns and interface name
            raise ValueError(f"sandbox name {name!r}: 1-9 of a-z, 0-9, '-'")
        self.name = name
        self.workdir = Path(workdir).resolve()
        self.node_ip = node_ip
        self.netns = f"btcf-{name}"
        self.netns_path = NETNS_DIR / self.netns
        self.cgroup_parent = f"/btcf-{name}"
        self.node_interface = ""
        self._holder: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None
        self._bridges: list[PortBridge] = []

    # -- public API -------------------------------------------------------------------------------
    @property
    def command_prefix(self) -> list[str]:
        """argv prefix that runs a command inside the sandbox's network and mount namespaces."""
        if self._holder is None:
            raise SandboxError(f"sandbox {self.name} is not started")
        return ["nsenter", f"--net={self.netns_path}", f"--mount=/proc/{self._holder.pid}/ns/mnt"]

    @property
    def var_log(self) -> Path:
        """What processes in the sandbox see as /var/log (kubelet's pod logs land here)."""
        return self.workdir / "var-log"

    def start(self) -> Sandbox:
        if self._holder is not None:
            return self
        self._take_lock()
        try:
            self._cleanup_leftovers()
            self._prepare_files()
            self._create_netns()
            self._create_cgroup()
            self._start_holder()
        except BaseException:
            self.stop()
            raise
        _started.add(self)
        return self

    def run(self, argv: Sequence[str], *, check: bool = True, timeout: float = 60) -> str:
        """Run a short command inside the sandbox; returns stdout, raises with stderr on failure."""
        result = subprocess.run(
            [*self.command_prefix, *argv], capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise SandboxError(f"{shlex.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def expose(self, port: int, host: str = "127.0.0.1") -> int:
        """A free 127.0.0.1 port of the host bridged to ``host:port`` inside the sandbox."""
        bridge = PortBridge(self.netns_path, port, target_host=host, workdir=self.workdir / "bridges")
        bridge.start()
        self._bridges.append(bridge)
        return bridge.host_port

    def pids(self) -> set[int]:
        """Every live process of the sandbox: in its mount or network namespace, or in its cgroups."""
        namespaces = {ns for ns in (self._ns_id(self.netns_path), self._holder_mnt()) if ns is not None}
        found = set(_pids_in_cgroup(self.cgroup_parent))
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            for kind in ("mnt", "net"):
                if self._ns_id(entry / "ns" / kind) in namespaces:
                    found.add(int(entry.name))
                    break
        return found

    def stop(self) -> None:
        """Kill every process of the sandbox, remove its cgroups and namespaces; safe to call twice."""
        for bridge in self._bridges:
            with contextlib.suppress(Exception):
                bridge.stop()
        self._bridges.clear()
        _kill_all(self.pids)
        if self._holder is not None:
            with contextlib.suppress(ProcessLookupError):
                self._holder.kill()
            self._holder.wait()
            self._holder = None
        _remove_cgroup(self.cgroup_parent)
        if self.netns_path.exists():
            subprocess.run(["ip", "netns", "delete", self.netns], capture_output=True, check=False)
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        _started.discard(self)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------------------------
    def _take_lock(self) -> None:
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        lock = (LOCK_DIR / f"{self.name}.lock").open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            lock.close()
            raise SandboxError(f"sandbox {self.name} is in use by another live run (lock {lock.name})") from e
        self._lock = lock

    def _cleanup_leftovers(self) -> None:
        """A run that crashed may have left the namespace, processes or cgroups of this name."""
        if self.netns_path.exists() or _cgroup_dirs(self.cgroup_parent):
            _kill_all(self.pids)
            _remove_cgroup(self.cgroup_parent)
            if self.netns_path.exists():
                subprocess.run(["ip", "netns", "delete", self.netns], capture_output=True, check=False)

    def _prepare_files(self) -> None:
        sysctl = self.workdir / "sysctl"
        for path in (sysctl, self.var_log):
            path.mkdir(parents=True, exist_ok=True)
        for key, value in KUBELET_SYSCTLS.items():
            target = sysctl / key.replace("/", ".")
            target.write_text(value + "\n")
            target.chmod(0o444)

    def _create_netns(self) -> None:
        _ip("netns", "add", self.netns)
        _ip("-n", self.netns, "link", "set", "lo", "up")
        # no dummy driver in some kernels (this machine's): then the node address lives on lo
        dummy = subprocess.run(
            ["ip", "-n", self.netns, "link", "add", "node0", "type", "dummy"],
            capture_output=True,
            check=False,
        )
        self.node_interface = "node0" if dummy.returncode == 0 else "lo"
        _ip("-n", self.netns, "addr", "add", f"{self.node_ip}/32", "dev", self.node_interface)
        _ip("-n", self.netns, "link", "set", self.node_interface, "up")

    def _create_cgroup(self) -> None:
        """``cgroup_parent`` in every hierarchy (kubelet refuses a cgroup root that does not exist)."""
        for hierarchy in CGROUP_ROOT.iterdir() if CGROUP_ROOT.is_dir() else ():
            if not (hierarchy / "cgroup.procs").exists():
                continue
            folder = hierarchy / self.cgroup_parent.lstrip("/")
            folder.mkdir(exist_ok=True)
            for name in ("cpuset.cpus", "cpuset.mems"):  # a new v1 cpuset starts empty: copy the parent's
                if (folder / name).exists() and not (folder / name).read_text().strip():
                    (folder / name).write_text((hierarchy / name).read_text())

    def _start_holder(self, timeout: float = 30) -> None:
        script = HOLDER_SCRIPT.replace("{modprobe}", " ".join(MODPROBE_PATHS))
        log = (self.workdir / "holder.log").open("ab")
        try:
            self._holder = subprocess.Popen(
                ["nsenter", f"--net={self.netns_path}", "unshare", "--mount", "--propagation", "private",
                 "sh", "-c", script, "holder", str(self.workdir)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )  # fmt: skip
        finally:
            log.close()
        assert self._holder.stdout is not None
        ready, _, _ = select.select([self._holder.stdout], [], [], timeout)
        line = self._holder.stdout.readline() if ready else b""
        if line.strip() != b"ready":
            raise SandboxError(f"mount namespace setup failed: {(self.workdir / 'holder.log').read_text()}")

    def _holder_mnt(self) -> int | None:
        return self._ns_id(Path(f"/proc/{self._holder.pid}/ns/mnt")) if self._holder is not None else None

    @staticmethod
    def _ns_id(path: Path) -> int | None:
        try:
            return path.stat().st_ino
        except OSError:
            return None


def host_network_state() -> dict[str, str]:
    """What a sandbox must never change on the host: interfaces, addresses, routes, iptables rules and
    the sysctls kubelet wants (lifetimes and packet counters left out: they change by themselves)."""
    commands = {
        "links": ["ip", "-br", "link"],
        "addresses": ["ip", "-br", "addr"],
        "routes": ["ip", "route"],
        "iptables": ["iptables", "-S"],
        "iptables-nat": ["iptables", "-t", "nat", "-S"],
    }
    state = {
        what: subprocess.run(argv, capture_output=True, text=True, check=False).stdout
        for what, argv in commands.items()
    }
    for key in KUBELET_SYSCTLS:
        state[key] = (Path("/proc/sys") / key).read_text()
    return state


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SandboxError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def _cgroup_dirs(parent: str) -> list[Path]:
    """The folder of ``parent`` in every mounted cgroup hierarchy that has one."""
    if not CGROUP_ROOT.is_dir():
        return []
    return [h / parent.lstrip("/") for h in CGROUP_ROOT.iterdir() if (h / parent.lstrip("/")).is_dir()]


def _walk_bottom_up(top: Path) -> Iterator[Path]:
    for root, dirs, _ in os.walk(top, topdown=False):
        for d in dirs:
            yield Path(root) / d
    yield top


def _pids_in_cgroup(parent: str) -> set[int]:
    pids: set[int] = set()
    for top in _cgroup_dirs(parent):
        for folder in _walk_bottom_up(top):
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
    return pids


def _remove_cgroup(parent: str, timeout: float = 30) -> None:
    """rmdir the cgroup folders, leaves first (a folder goes once its processes have exited)."""
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for top in _cgroup_dirs(parent):
            for folder in _walk_bottom_up(top):
                try:
                    folder.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    left.append(folder)
        if not left or time.monotonic() > deadline:
            return
        time.sleep(0.5)


def _kill_all(find: Any, grace: float = 10) -> None:
    """SIGTERM what ``find()`` returns, then SIGKILL whatever is still there after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        pids = find()
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _alive(find()):
            time.sleep(0.2)


def _alive(pids: set[int]) -> bool:
    """True while one of ``pids`` is a live process (zombies, waiting for their parent, do not count)."""
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            return True
    return False
