"""The scripts the chart's Jobs run (files/*.py, inlined as `python -c`) do their job for real.

Each test takes the container's command and env from the rendered chart, points the endpoints at
real local servers (SeaweedFS for S3, a stdlib HTTP server for MLflow's /health and the CSV) and runs
the command with this interpreter, as the container runs it with the image's Python.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest
from botocore.config import Config
from chart_helpers import find

from btcforecast.devservers.seaweedfs import SeaweedFS

# More than a ConfigMap can hold (1 MiB): the reason the seed takes the CSV from a URL.
CSV_ROWS = 30_000


class _Files(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.routes.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[tuple[str, dict[str, bytes]]]:
    """(base URL, routes) of an HTTP server on a free loopback port; routes maps path -> body."""
    handler = type("Files", (_Files,), {"routes": {"/health": b"OK"}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.routes
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def s3_client(store: SeaweedFS) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=store.endpoint_url,
        aws_access_key_id=store.access_key,
        aws_secret_access_key=store.secret_key,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )


def run(container: dict, store: SeaweedFS, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the container's `python -c` command here, with its rendered plain env plus `env`, and the
    store's keys as files in a stand-in for the mounted secrets directory (as the kubelet mounts them)."""
    command = container["command"]
    assert command[:2] == ["python", "-c"]
    rendered = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert not [e for e in container["env"] if "valueFrom" in e], "secrets come as files, not env vars"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert rendered["SECRETS_DIR"] == mounts["secrets"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_", "CSV_", "MLFLOW_"))}
    with tempfile.TemporaryDirectory() as secrets:
        Path(secrets, "AWS_ACCESS_KEY_ID").write_text(store.access_key + "\n")
        Path(secrets, "AWS_SECRET_ACCESS_KEY").write_text(store.secret_key)
        rendered.update(S3_ENDPOINT_URL=store.endpoint_url, SECRETS_DIR=secrets, **env)
        return subprocess.run(
            [sys.executable, *command[1:]],
            env={**clean, **rendered},
            capture_output=True,
            text=True,
            timeout=120,
        )


def big_csv() -> bytes:
    lines = ["timestamps,open,high,low,close,volume,amount"]
    lines += [
        f"2024-01-01 00:00:{i},42000.5,42100.25,41900.75,42050.0,12.5,525000.0" for i in range(CSV_ROWS)
    ]
    return ("\n".join(lines) + "\n").encode()


def seed_init(render, values: dict) -> dict:
    [seed] = find(render(values), "Job", "seed")
    [init] = seed["spec"]["template"]["spec"]["initContainers"]
    return init


def test_bucket_job_creates_missing_buckets_and_leaves_existing_ones(render, seaweedfs: SeaweedFS) -> None:
    fresh = f"mlflow-{uuid.uuid4().hex[:12]}"
    values = {"objectStore": {"buckets": {"mlflow": fresh, "marketData": seaweedfs.bucket}}}
    [job] = find(render(values), "Job", "buckets")
    [container] = job["spec"]["template"]["spec"]["containers"]

    first = run(container, seaweedfs)
    assert first.returncode == 0, first.stderr
    assert f"bucket {fresh}: created" in first.stdout
    assert f"bucket {seaweedfs.bucket}: exists" in first.stdout
    s3_client(seaweedfs).head_bucket(Bucket=fresh)

    again = run(container, seaweedfs)
    assert again.returncode == 0, again.stderr
    assert f"bucket {fresh}: exists" in again.stdout


def test_seed_init_downloads_a_csv_larger_than_a_configmap(render, seaweedfs, web, tmp_path: Path) -> None:
    base, routes = web
    routes["/btc.csv"] = body = big_csv()
    assert len(body) > 1024 * 1024
    values = {
        "objectStore": {"buckets": {"mlflow": seaweedfs.bucket}},
        "seed": {"data": {"csvUrl": f"{base}/btc.csv", "csvSha256": hashlib.sha256(body).hexdigest()}},
    }
    target = tmp_path / "btc.csv"
    done = run(seed_init(render, values), seaweedfs, MLFLOW_TRACKING_URI=base, CSV_PATH=str(target))
    assert done.returncode == 0, done.stderr
    assert target.read_bytes() == body
    assert "ready: MLflow" in done.stdout and f"ready: bucket {seaweedfs.bucket}" in done.stdout


def test_seed_init_refuses_a_csv_with_the_wrong_checksum(render, seaweedfs, web, tmp_path: Path) -> None:
    base, routes = web
    routes["/btc.csv"] = big_csv()
    values = {
        "objectStore": {"buckets": {"mlflow": seaweedfs.bucket}},
        "seed": {"data": {"csvUrl": f"{base}/btc.csv", "csvSha256": "0" * 64}},
    }
    target = tmp_path / "btc.csv"
    done = run(seed_init(render, values), seaweedfs, MLFLOW_TRACKING_URI=base, CSV_PATH=str(target))
    assert done.returncode != 0
    assert "is not the expected" in done.stderr
    assert not target.exists()


def test_seed_init_gives_up_when_the_model_bucket_never_appears(render, seaweedfs, web) -> None:
    base, _ = web
    values = {"objectStore": {"buckets": {"mlflow": f"absent-{uuid.uuid4().hex[:12]}"}}}
    done = run(seed_init(render, values), seaweedfs, MLFLOW_TRACKING_URI=base, WAIT_SECONDS="1")
    assert done.returncode != 0
    assert "gave up waiting for bucket absent-" in done.stderr


def test_mlflow_starts_with_the_mounted_secret_files_in_its_environment(render, tmp_path: Path) -> None:
    """files/exec_with_secrets.py: each file becomes a variable, then the wrapper becomes MLflow."""
    [dep] = find(
        render({"mlflow": {"backendStore": {"existingSecret": "db", "existingSecretKey": "url"}}}),
        "Deployment",
        "mlflow",
    )
    [container] = dep["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    assert command[:2] == ["python", "-c"] and command[3:5] == ["mlflow", "server"]
    (tmp_path / "AWS_ACCESS_KEY_ID").write_text("key-id\n")
    (tmp_path / "MLFLOW_BACKEND_STORE_URI").write_text("postgresql://u:p@db/mlflow")
    (tmp_path / "..data").mkdir()  # the kubelet's bookkeeping next to the files: never a variable
    show = "import os, sys; e = os.environ; print(e['AWS_ACCESS_KEY_ID'], e['MLFLOW_BACKEND_STORE_URI'], "
    show += "sys.argv[1])"
    done = subprocess.run(
        [sys.executable, "-c", command[2], sys.executable, "-c", show, "server"],
        env={**os.environ, "SECRETS_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["key-id", "postgresql://u:p@db/mlflow", "server"]
