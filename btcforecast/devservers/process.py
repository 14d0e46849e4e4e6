"""Run a local server (SeaweedFS, MLflow, a component) as a child process we can always stop.

Each server runs in its own process group so that stopping it also stops whatever it forked
(MLflow's workers, for instance): SIGTERM to the group, then SIGKILL after a grace period. Start
returns only once the server answers on its health URL or port, and a server that dies while
starting fails with the end of its log. Logs go to a file. ``restart()`` and ``kill()`` exist for
fault tests that stop dependencies and bring them back on the same port.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import httpx

LOOPBACK = "127.0.0.1"
DEFAULT_READY_TIMEOUT = 30.0
DEFAULT_GRACE = 5.0
_POLL = 0.1
_running: dict[int, ManagedProcess] = {}


class ProcessStartError(RuntimeError):
    """A server did not become ready: it exited, or did not answer within the timeout."""


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct ports that were free on ``host`` a moment ago (all held until chosen)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port(host: str = LOOPBACK) -> int:
    """A port that was free on ``host`` a moment ago."""
    return free_ports(1, host)[0]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _group_alive(pgid: int) -> bool:
    """True while a live (non-zombie) process is in group ``pgid``.

    Zombies count as gone: orphans are reaped by PID 1, which in containers may be slow to do it.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


class ManagedProcess:
    """One server process: ``start()`` waits for readiness, ``stop()`` ends its whole group.

    Readiness is ``ready_url`` answering with a status below 500, or ``ready_port`` accepting TCP
    connections on 127.0.0.1. ``env`` is added to this process's environment unless
    ``inherit_env`` is False.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: str | Path,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        ready_url: str | None = None,
        ready_port: int | None = None,
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        grace: float = DEFAULT_GRACE,
        cwd: str | Path | None = None,
    ) -> None:
        if ready_url is None and ready_port is None:
            raise ValueError(f"{name}: give ready_url or ready_port so start() knows when it is up")
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.env = dict(env or {})
        self.inherit_env = inherit_env
        self.ready_url, self.ready_port = ready_url, ready_port
        self.ready_timeout, self.grace = ready_timeout, grace
        self.cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the server: scheme and host:port of ``ready_url``, else http://127.0.0.1:port."""
        if self.ready_url is not None:
            parts = urlsplit(self.ready_url)
            return f"{parts.scheme}://{parts.netloc}"
        return f"http://{LOOPBACK}:{self.ready_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> ManagedProcess:
        """Start the server and wait until it is ready; raise ProcessStartError if it is not."""
        if self.running:
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env} if self.inherit_env else dict(self.env)
        with self.log_path.open("ab") as log:
            log.write(f"--- {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            try:
                self._proc = subprocess.Popen(
                    self.argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    cwd=self.cwd,
                    start_new_session=True,
                )
            except OSError as e:
                raise ProcessStartError(f"{self.name}: cannot run {self.argv[0]}: {e}") from e
        _running[self._proc.pid] = self
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _is_ready(self, client: httpx.Client) -> bool:
        if self.ready_url is not None:
            try:
                return client.get(self.ready_url).status_code < 500
            except httpx.HTTPError:
                return False
        assert self.ready_port is not None
        return port_open(LOOPBACK, self.ready_port)

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.ready_timeout
        with httpx.Client(timeout=httpx.Timeout(2.0, connect=1.0), trust_env=False) as client:
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise ProcessStartError(
                        f"{self.name} exited with code {code} while starting:\n{self.log_tail()}"
                    )
                if self._is_ready(client):
                    return
                if time.monotonic() > deadline:
                    raise ProcessStartError(
                        f"{self.name} not ready after {self.ready_timeout:.0f} s "
                        f"({self.ready_url or self.ready_port}):\n{self.log_tail()}"
                    )
                time.sleep(_POLL)

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; safe to call twice."""
        self._signal_group(signal.SIGTERM, self.grace)

    def kill(self) -> None:
        """SIGKILL the process group at once, as a crash would (for fault tests)."""
        self._signal_group(signal.SIGKILL, 0.0)

    def restart(self) -> ManagedProcess:
        """Stop (if running) and start again with the same command, ports and log file."""
        self.stop()
        return self.start()

    def _signal_group(self, sig: signal.Signals, grace: float) -> None:
        proc = self._proc
        if proc is None:
            return
        pgid = proc.pid  # start_new_session makes the child its group's leader
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (proc.poll() is None or _group_alive(pgid)):
            time.sleep(_POLL)
        with contextlib.suppress(ProcessLookupError):
            if proc.poll() is None or _group_alive(pgid):
                os.killpg(pgid, signal.SIGKILL)
        proc.wait()
        _running.pop(proc.pid, None)
        self._proc = None

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@atexit.register
def _kill_leftovers() -> None:
    """Never leave servers behind when the interpreter exits without stopping them."""
    for managed in list(_running.values()):
        with contextlib.suppress(Exception):
            managed.kill()
