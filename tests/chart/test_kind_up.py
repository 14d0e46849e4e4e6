"""scripts/kind-up.sh installs the KServe control plane that matches the kserve Python package we pin.

The script itself needs docker, kind and the internet (not available where the tests run); its
version choice is plain shell, run here as the script runs it.
"""

from __future__ import annotations

import re
import subprocess

from chart_helpers import ROOT

SCRIPT = ROOT / "scripts" / "kind-up.sh"


def script_variable(name: str) -> str:
    """The value the script gives ``name``, from its own assignment lines, run from the repo root."""
    lines = [line for line in SCRIPT.read_text().splitlines() if re.match(r"^[A-Z_]+=", line)]
    program = "\n".join([*lines, f'printf %s "${name}"'])
    done = subprocess.run(
        ["bash", "-c", program],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kserve_version_is_the_pinned_python_packages() -> None:
    pinned = re.search(r"^kserve==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M)
    assert pinned
    assert script_variable("KSERVE_VERSION") == f"v{pinned.group(1)}"


def test_kserve_is_installed_from_its_0_17_and_later_charts() -> None:
    text = SCRIPT.read_text()
    assert "oci://ghcr.io/kserve/charts/kserve-crd " in text
    assert "oci://ghcr.io/kserve/charts/kserve-resources " in text


def test_helm_install_waits_for_workloads_and_jobs() -> None:
    assert "--wait --wait-for-jobs" in SCRIPT.read_text()
