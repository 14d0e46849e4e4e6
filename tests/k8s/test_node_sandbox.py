"""The node's sandbox keeps the host as it was: its own network, read-only sysctls, nothing left after stop.

kubelet, kube-proxy and dockerd run in it and change iptables, bridges, sysctls and /var/log as they
please; these tests pin down that none of it can reach the host (tests.k8s.sandbox).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.k8s.sandbox import CGROUP_ROOT, KUBELET_SYSCTLS, Sandbox, SandboxError, host_network_state

pytestmark = pytest.mark.node


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox("sbtest", tmp_path / "sandbox") as running:
        yield running


def test_sandbox_network_holds_only_loopback_and_the_node_address(sandbox: Sandbox) -> None:
    addresses = sandbox.run(["ip", "-o", "-4", "addr"])
    assert sorted(line.split()[3] for line in addresses.splitlines()) == ["10.201.0.1/32", "127.0.0.1/8"]
    assert sandbox.run(["ip", "route"]).strip() == ""  # no way out


def test_sysctls_kubelet_sets_are_read_only_inside_and_untouched_outside(sandbox: Sandbox) -> None:
    before = Path("/proc/sys/vm/overcommit_memory").read_text()
    inside = sandbox.run(["cat", "/proc/sys/vm/overcommit_memory"]).strip()
    write = subprocess.run(
        [*sandbox.command_prefix, "sh", "-c", "echo 2 > /proc/sys/vm/overcommit_memory"], capture_output=True
    )
    assert inside == KUBELET_SYSCTLS["vm/overcommit_memory"]
    assert write.returncode != 0
    assert Path("/proc/sys/vm/overcommit_memory").read_text() == before


def test_var_log_inside_is_a_folder_of_the_sandbox(sandbox: Sandbox) -> None:
    sandbox.run(["mkdir", "-p", "/var/log/pods/probe"])
    assert (sandbox.var_log / "pods" / "probe").is_dir()
    assert not Path("/var/log/pods/probe").exists()


def test_sysfs_inside_shows_the_sandbox_interfaces_and_the_cgroups(sandbox: Sandbox) -> None:
    assert sandbox.run(["ls", "/sys/class/net"]).split() == ["lo"]
    assert "memory" in sandbox.run(["ls", "/sys/fs/cgroup"]).split()


def test_an_exposed_port_reaches_a_server_inside(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "hello.txt").write_text("from inside")
    server = subprocess.Popen(
        [*sandbox.command_prefix, "python3", "-m", "http.server", "--bind", sandbox.node_ip, "8080",
         "--directory", str(tmp_path / "www")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        port = sandbox.expose(8080, sandbox.node_ip)
        answer = None
        for _ in range(100):
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/hello.txt", timeout=5, trust_env=False)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert answer is not None and answer.text == "from inside"
    finally:
        server.terminate()
        server.wait()


def test_a_second_sandbox_of_the_same_name_is_refused_while_the_first_runs(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    with pytest.raises(SandboxError, match="in use"):
        Sandbox("sbtest", tmp_path / "other").start()


def test_stop_leaves_nothing_behind(tmp_path: Path) -> None:
    before = host_network_state()
    sandbox = Sandbox("sbtest", tmp_path / "sandbox").start()
    sleeper = subprocess.Popen([*sandbox.command_prefix, "sleep", "600"])
    netns = sandbox.netns_path
    sandbox.stop()
    assert sleeper.wait(timeout=30) is not None
    assert not netns.exists()
    assert not any((h / "btcf-sbtest").exists() for h in CGROUP_ROOT.iterdir())
    assert host_network_state() == before
