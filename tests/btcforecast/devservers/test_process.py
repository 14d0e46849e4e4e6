"""The server process helper: readiness, clean stop of the whole group, restart, failures."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from btcforecast.devservers.process import ManagedProcess, ProcessStartError, free_port, free_ports, port_open

SERVER = textwrap.dedent(
    """
    import http.server, os, signal, subprocess, sys
    port, child_file = int(sys.argv[1]), sys.argv[2]
    if os.environ.get("IGNORE_TERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    open(child_file, "w").write(str(child.pid))
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.end_headers()
            self.wfile.write(b"ok " + os.environ["GREETING"].encode())
        def log_message(self, *a):
            sys.stderr.write("request\\n")
    print("listening", flush=True)
    http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def server(tmp_path: Path) -> ManagedProcess:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    port = free_port()
    return ManagedProcess(
        "toy",
        [sys.executable, str(script), str(port), str(tmp_path / "child.pid")],
        env={"GREETING": "hello"},
        log_path=tmp_path / "logs" / "toy.log",
        ready_url=f"http://127.0.0.1:{port}/health",
        ready_timeout=20,
        grace=2.0,
    )


def test_start_returns_once_the_server_answers(server: ManagedProcess) -> None:
    with server:
        assert httpx.get(f"{server.url}/x", trust_env=False).text == "ok hello"


def test_stop_ends_the_whole_process_group(server: ManagedProcess, tmp_path: Path) -> None:
    server.start()
    child = int((tmp_path / "child.pid").read_text())
    server.stop()
    assert not server.running
    assert not _alive(child)


def test_stop_kills_a_server_that_ignores_sigterm(server: ManagedProcess) -> None:
    server.env["IGNORE_TERM"] = "1"
    server.grace = 0.3
    pid = server.start().pid
    assert pid is not None
    server.stop()
    assert not _alive(pid)


def test_restart_serves_again_on_the_same_port(server: ManagedProcess) -> None:
    with server:
        first = server.pid
        server.kill()
        assert not server.running
        server.restart()
        assert server.pid != first
        assert httpx.get(server.url, trust_env=False).status_code == 200


def test_output_is_captured_in_the_log_file(server: ManagedProcess) -> None:
    with server:
        pass
    assert "listening" in server.log_path.read_text()


def test_a_server_that_exits_while_starting_fails_with_its_log(tmp_path: Path) -> None:
    crash = ManagedProcess(
        "crash",
        [sys.executable, "-c", "import sys; print('bad config'); sys.exit(3)"],
        log_path=tmp_path / "crash.log",
        ready_port=free_port(),
    )
    with pytest.raises(ProcessStartError, match=r"(?s)exited with code 3.*bad config"):
        crash.start()


def test_a_server_never_ready_fails_and_is_stopped(tmp_path: Path) -> None:
    silent = ManagedProcess(
        "silent",
        [sys.executable, "-c", "import time; time.sleep(600)"],
        log_path=tmp_path / "silent.log",
        ready_port=free_port(),
        ready_timeout=0.5,
        grace=1.0,
    )
    with pytest.raises(ProcessStartError, match="not ready"):
        silent.start()
    assert not silent.running


def test_free_ports_are_distinct_and_closed() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    assert not any(port_open("127.0.0.1", p) for p in ports)
