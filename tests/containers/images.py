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
COMPONENTS = ("predictor", "facade", "callback", "operator", "mlflow")
# The Python base of every image in LOCAL_BUILD (scripts/base-image.sh), reported beside them.
LOCAL_BASE = "btc-forecast/python-base:bookworm-slim"
BUILD_TIMEOUT = 3600.0


class ImageBuildError(RuntimeError):
    """scripts/images.sh failed; the message holds the end of its log."""


@dataclass(frozen=True)
class BuiltImages:
    prefix: str
    tag: str
    build_seconds: float
    sizes: dict[str, int]
    base: tuple[str, int] | None = None  # the Python base image and its size

    def ref(self, component: str) -> str:
        return f"{self.prefix}/{component}:{self.tag}"

    def report(self) -> list[str]:
        lines = [
            f"images built (scripts/images.sh) in {self.build_seconds:.0f} s; docker image inspect .Size:"
        ]
        lines += [f"  {self.ref(c):40s} {s / 1e6:8.0f} MB" for c, s in self.sizes.items()]
        if self.base:
            lines.append(f"  {self.base[0]:40s} {self.base[1] / 1e6:8.0f} MB  (their Python base)")
        return lines


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
    base_ref = env.get("PYTHON_IMAGE") or (LOCAL_BASE if env["LOCAL_BUILD"] == "1" else "")
    found = engine.docker_result("image", "inspect", "-f", "{{.Size}}", base_ref) if base_ref else None
    base = (base_ref, int(found.stdout.strip())) if found is not None and found.returncode == 0 else None
    return BuiltImages(PREFIX, tag, seconds, sizes, base)


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
