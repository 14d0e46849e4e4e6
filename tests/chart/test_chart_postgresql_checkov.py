"""checkov finds nothing in the bundled PostgreSQL (StatefulSet, headless Service, Secret,
NetworkPolicy) and in the autoscalers and disruption budgets of a replicated release; the same
scanner, venv and rules as test_chart_checkov.py, on the value set those objects need."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml
from test_chart_checkov import checkov

REPLICATED_BUNDLED = {
    "postgresql": {"bundled": {"enabled": True}},
    "facade": {"replicas": 2, "autoscaling": {"enabled": True}},
    "callback": {"replicas": 2},
    "predictor": {"replicas": 2, "autoscaling": {"enabled": True}},
}


@pytest.fixture(scope="module")
def report(render, tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("rendered-postgresql")
    docs = render(REPLICATED_BUNDLED)
    assert {"StatefulSet", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= {d["kind"] for d in docs}
    (folder / "replicated-bundled.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    done = subprocess.run(
        [checkov(), "-d", folder, "--framework", "kubernetes", "--compact", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


@pytest.mark.timeout(1200)
def test_checkov_finds_nothing_in_the_bundled_database_and_the_autoscaled_release(report: dict) -> None:
    findings = [
        f"{f['check_id']} {f['check_name']}: {f['resource']}" for f in report["results"]["failed_checks"]
    ]
    assert not findings, "\n".join(findings)
    assert report["summary"]["parsing_errors"] == 0
    scanned = {r["resource"] for r in report["results"]["passed_checks"]}
    assert any(r.startswith("StatefulSet.") and r.endswith("btc-forecast-postgresql") for r in scanned), (
        scanned
    )


@pytest.mark.timeout(1200)
def test_only_the_written_skips_are_taken(report: dict) -> None:
    assert {s["check_id"] for s in report["results"]["skipped_checks"]} <= {
        "CKV_K8S_15",
        "CKV_K8S_43",
        "CKV_K8S_38",
    }
