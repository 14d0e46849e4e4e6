"""checkov, a Kubernetes security scanner, finds nothing in the rendered chart.

Four value sets (defaults, KServe on, external object store, ingress with TLS), rendered into the
release namespace (not `default`), are scanned together; any failed check fails the test with the
finding. What the values make impossible to pass is skipped in the templates themselves, each skip
with its written reason (an image given by tag, a pull policy other than Always, the two pods that
call the API server), and this test refuses a skip without one.

checkov runs in a venv of its own under the project cache: it requires tabulate<0.10, which the
project's pins (tabulate==0.10.0, for kserve) exclude. The venv is built once from the exact set in
checkov-constraints.txt.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from chart_helpers import NAMESPACE, VALUE_SETS

from tests.k8s.paths import CACHE_DIR

CHECKOV_VERSION = "3.3.30"
CONSTRAINTS = Path(__file__).with_name("checkov-constraints.txt")
VENV = CACHE_DIR / f"checkov-{CHECKOV_VERSION}"
SCANNED = ["defaults", "kserve-on", "external-stores", "ingress-tls"]


def checkov() -> Path:
    """The checkov executable of its own venv, installed from PyPI on first use."""
    executable = VENV / "bin" / "checkov"
    if not executable.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, timeout=120)
        subprocess.run(
            [VENV / "bin" / "pip", "install", "-q", "-c", CONSTRAINTS, f"checkov=={CHECKOV_VERSION}"],
            check=True,
            timeout=900,
        )
    return executable


@pytest.fixture(scope="module")
def report(render, tmp_path_factory: pytest.TempPathFactory) -> dict:
    assert NAMESPACE != "default"
    folder = tmp_path_factory.mktemp("rendered")
    for name in SCANNED:
        (folder / f"{name}.yaml").write_text(yaml.safe_dump_all(render(VALUE_SETS[name]), sort_keys=False))
    done = subprocess.run(
        [checkov(), "-d", folder, "--framework", "kubernetes", "--compact", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode in (0, 1), done.stderr  # 1 = findings, reported below
    return json.loads(done.stdout)


@pytest.mark.timeout(1200)
def test_checkov_finds_nothing_in_the_rendered_chart(report: dict) -> None:
    summary = report["summary"]
    assert summary["checkov_version"] == CHECKOV_VERSION
    assert summary["resource_count"] > 100 and summary["passed"] > 1000, summary
    findings = [
        f"{f['check_id']} {f['check_name']}: {f['resource']} ({f['file_path']})"
        for f in report["results"]["failed_checks"]
    ]
    assert not findings, "\n".join(findings)
    assert summary["parsing_errors"] == 0


@pytest.mark.timeout(1200)
def test_every_skipped_check_says_why(report: dict) -> None:
    skipped = report["results"]["skipped_checks"]
    assert skipped, "the values of the scanned sets give image tags and IfNotPresent: skips expected"
    assert {s["check_id"] for s in skipped} <= {"CKV_K8S_15", "CKV_K8S_43", "CKV_K8S_38"}
    for s in skipped:
        reason = s["check_result"].get("suppress_comment", "")
        assert reason and reason != "No comment provided", f"{s['check_id']} on {s['resource']}"
