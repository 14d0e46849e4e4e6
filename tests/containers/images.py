"""Build the project's images with scripts/images.sh on a given engine, and read back their sizes.

Shared by the container tests' fixtures and anyone else who needs the images present on the shared
data root first (e.g. the node tests: build on the root-namespace engine, then start the node's).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.k8s.docker_engine import DockerEngine

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "btc-forecast"
COMPONENTS = ("app-base", "predictor", "facade", "callback", "operator", "mlflow")
BUILD_TIMEOUT = 3600.0


class ImageBuildError(RuntimeError):
    """scripts/images.sh failed; the message holds the end of its log."""


@dataclass(frozen=True)
class BuiltImages:
    prefix: str
    tag: str
    build_seconds: float
    sizes: dict[str, int]

    def ref(self, component: str) -> str:
        return f"{self.prefix}/{component}:{self.tag}"

    def report(self) -> list[str]:
        return [f"images built (scripts/images.sh) in {self.build_seconds:.0f} s:"] + [
            f"  {self.ref(c):40s} {s / 1e6:8.0f} MB" for c, s in self.sizes.items()
        ]


def build_images(engine: DockerEngine, tag: str, *, log: Path | None = None) -> BuiltImages:
    """Run scripts/images.sh against engine (LOCAL_BUILD=1 unless the environment sets it)."""
    env = {**os.environ, **engine.env(), "TAG": tag}
    env.setdefault("LOCAL_BUILD", "1")
    env.pop("REGISTRY", None)
    log = log or engine.run_dir / "images-build.log"
    start = time.monotonic()
    with open(log, "wb") as out:
        result = subprocess.run(
            [str(ROOT / "scripts" / "images.sh")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=BUILD_TIMEOUT,
        )
    seconds = time.monotonic() - start
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise ImageBuildError(f"scripts/images.sh failed ({result.returncode}); log {log}:\n{tail}")
    sizes = {}
    for component in COMPONENTS:
        ref = f"{PREFIX}/{component}:{tag}"
        sizes[component] = int(engine.docker("image", "inspect", "-f", "{{.Size}}", ref).strip())
    return BuiltImages(PREFIX, tag, seconds, sizes)


def host_network_state() -> dict[str, str]:
    """What the engine must never change in the root namespace: links, routes, iptables, forwarding."""

    def out(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout

    links = sorted(line.split(":")[1].strip() for line in out("ip", "-o", "link", "show").splitlines())
    return {
        "links": "\n".join(links),
        "routes": out("ip", "route", "show", "table", "all"),
        "iptables": out("iptables", "-S") + out("iptables", "-t", "nat", "-S"),
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text(),
    }
