"""Session fixtures of the container tests: a private Docker engine and the project's images, built.

The engine is the root-namespace one from tests/k8s/docker_engine.py (own data root in the cache, own
socket, host iptables untouched); the images come from scripts/images.sh in its local mode
(LOCAL_BUILD=1: debootstrap base, the host's torch wheel, `--network host`) unless the environment
says otherwise. A cold build takes 15-20 minutes on 2 busy cores; unchanged images are skipped in seconds.
One engine runs per data root: run these tests before the node tests (tests/k8s/test_node_*), whose
engine on the same data root replaces this one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.containers.images import BuiltImages, build_images, host_network_state
from tests.containers.pod import remove_labelled
from tests.containers.release import rendered_chart
from tests.k8s.docker_engine import DockerEngine, build_engine

_report_key = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session")
def host_network_before() -> dict[str, str]:
    return host_network_state()


@pytest.fixture(scope="session")
def docker_engine(host_network_before: dict[str, str]) -> Iterator[DockerEngine]:
    """The build engine, started for this session (a previous engine on its data root is stopped)."""
    engine = build_engine()
    engine.start()
    remove_labelled(engine)  # leftovers of an interrupted run
    try:
        yield engine
    finally:
        engine.stop()


def images_tag() -> str:
    """The tag the chart deploys (one for all our images), which images.sh must build."""
    images = [c["image"] for c in rendered_chart().all_containers() if c["image"].startswith("btc-forecast/")]
    tags = {image.rsplit(":", 1)[1] for image in images}
    assert len(tags) == 1, f"the chart's images use several tags: {tags}"
    return tags.pop()


@pytest.fixture(scope="session")
def built_images(docker_engine: DockerEngine, request: pytest.FixtureRequest) -> BuiltImages:
    """scripts/images.sh run against the session's engine; sizes reported at the end of the run."""
    images = build_images(docker_engine, images_tag())
    request.config.stash.setdefault(_report_key, []).extend(images.report())
    return images


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    lines = config.stash.get(_report_key, [])
    if lines:
        terminalreporter.section("container images")
        for line in lines:
            terminalreporter.write_line(line)
