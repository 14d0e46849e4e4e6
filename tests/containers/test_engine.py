"""The private Docker engine and the port bridge the container and node tests stand on."""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.containers.images import BuiltImages, host_network_state
from tests.containers.pod import Pod
from tests.k8s.docker_engine import DockerEngine
from tests.k8s.portbridge import PortBridge

pytestmark = [pytest.mark.containers, pytest.mark.timeout(3600)]


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def test_a_second_engine_on_the_same_data_root_stops_the_first() -> None:
    root = Path(tempfile.mkdtemp(prefix="btcf-engine-"))  # short: containerd's socket paths are limited
    first = DockerEngine(root / "data", root / "run1")
    second = DockerEngine(root / "data", root / "run2")
    try:
        first.start()
        first_pids = dict(first._pids)
        second.start()
        assert second.ping() and not first.ping()
        assert not any(_alive(pid) for pid in first_pids.values())
    finally:
        second.stop()
        first.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_bridge_mode_is_refused_outside_a_namespace(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="namespace"):
        DockerEngine(tmp_path / "data", tmp_path / "run", bridge=True)


def test_the_runc_wrapper_turns_a_negative_oom_score_adj_into_zero(
    docker_engine: DockerEngine, built_images: BuiltImages
) -> None:
    # kubelet asks -998 for pod sandboxes; root here may not lower it (no CAP_SYS_RESOURCE).
    out = docker_engine.docker(
        "run", "--rm", "--network", "none", "--oom-score-adj", "-998", "--entrypoint", "cat",
        built_images.ref("callback"), "/proc/self/oom_score_adj",
    )  # fmt: skip
    assert out.strip() == "0"


def test_a_port_bridge_reaches_a_server_inside_a_containers_namespace_until_stopped(
    docker_engine: DockerEngine, built_images: BuiltImages
) -> None:
    with tempfile.TemporaryDirectory(prefix="btcf-ct-") as tmp:
        pod = Pod(docker_engine, Path(tmp), name="btcf-ct-bridge")
        try:
            pod.start(built_images.ref("callback"))
            server = ["-m", "http.server", "8765", "--bind", "127.0.0.1", "--directory", "/opt"]
            name = pod.run_image(
                "http", built_images.ref("callback"), "--entrypoint", "python", command=server
            )
            assert pod.netns is not None
            with PortBridge(pod.netns, 8765, workdir=Path(tmp)) as bridge:
                pod_answer = _poll(f"{bridge.url}/", lambda: pod.state(name)["Running"])
                port = bridge.host_port
            assert pod_answer == 200
            assert _refused(port)
        finally:
            pod.remove()


def test_the_engine_leaves_the_hosts_links_routes_iptables_and_forwarding_alone(
    host_network_before: dict[str, str], docker_engine: DockerEngine, built_images: BuiltImages
) -> None:
    docker_engine.docker("run", "--rm", "--network", "none", built_images.ref("callback"), "true")
    assert host_network_state() == host_network_before


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _poll(url: str, running: Callable[[], bool], timeout: float = 120) -> int:
    """The status of GET url once the server inside answers (bounded; fails if the container exits)."""
    deadline = time.monotonic() + timeout
    while True:
        assert running(), "the server container exited"
        try:
            return httpx.get(url, trust_env=False, timeout=10).status_code
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
