"""The project's real images, built by scripts/images.sh and run the way the chart runs them.

A private Docker engine (tests/k8s/docker_engine.py) builds the images (cached layers reused) and runs
the chart's containers with the chart's own command, args, env, user, read-only root, capabilities and
limits, taken from the rendered chart (tests/containers/chartpod.py), in one network namespace like a
pod (Service names -> 127.0.0.1). SeaweedFS (the host venv's static `weed` binary, bind-mounted
read-only into a predictor-image container: the lean images do not carry it) stands in for MinIO, whose
image cannot be pulled here; the seed Job trains from the real CSV mounted read-only over its
ConfigMap key. The host reaches the containers through port bridges. The operator's container needs an
API server and is run by the node tests (tests/k8s/test_node_*.py) instead.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from botocore.config import Config

from btcforecast.devservers.seaweedfs import weed_binary
from btcforecast.features import compute_features, history_start, windows_for_range
from btcforecast.market import read_csv
from tests.containers.chartpod import Chart, ContainerRun, container_run
from tests.containers.images import COMPONENTS, BuiltImages
from tests.containers.pod import Pod, PodError
from tests.containers.release import rendered_chart
from tests.k8s.docker_engine import DockerEngine

pytestmark = [pytest.mark.containers, pytest.mark.timeout(3600)]

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 600.0
WEED_IN_CONTAINER = "/opt/btcf-test/weed"  # the host's static `weed`, bind-mounted (test only)
SEED_TIMEOUT = 1800.0
# weed mini's other servers, inside the pod's namespace; each gRPC port is its HTTP port + 10000, which
# is where weed's plugin worker looks for the admin server whatever -admin.port.grpc says.
WEED_PORTS = {
    "master.port": 19333,
    "master.port.grpc": 29333,
    "volume.port": 18080,
    "volume.port.grpc": 28080,
    "filer.port": 18888,
    "filer.port.grpc": 28888,
    "admin.port": 19646,
    "admin.port.grpc": 29646,
}


def real_csv() -> Path:
    """$BTC_DATA_CSV, else ../shared/data/btc_usd_1h.csv beside the checkout (dev machines and CI)."""
    path = Path(os.environ.get("BTC_DATA_CSV") or ROOT.parent / "shared" / "data" / "btc_usd_1h.csv")
    assert path.is_file(), f"the real market CSV is missing: {path} (set BTC_DATA_CSV)"
    return path


@dataclass
class Release:
    pod: Pod
    chart: Chart
    runs: dict[str, ContainerRun]
    names: dict[str, str]
    seed_logs: dict[str, str]

    def port(self, component: str) -> int:
        return next(iter(self.runs[component].ports.values()))


def s3_buckets(chart: Chart) -> set[str]:
    """Buckets the chart's containers use (s3://BUCKET in env or args, MLFLOW_BUCKET)."""
    found: set[str] = set()
    for c in chart.all_containers():
        texts = [str(e.get("value", "")) for e in c.get("env", [])] + list(map(str, c.get("command", [])))
        texts += list(map(str, c.get("args", [])))
        found |= {m for t in texts for m in re.findall(r"s3://([a-z0-9][a-z0-9.-]+)", t)}
        found |= {str(e["value"]) for e in c.get("env", []) if e["name"] == "MLFLOW_BUCKET" and "value" in e}
    return found


def s3_credentials(chart: Chart) -> tuple[str, str]:
    """The object store's root credentials: the Secret keys MinIO reads through ``MINIO_ROOT_*_FILE``."""
    spec = chart.workload("minio", "Deployment")["spec"]["template"]["spec"]
    for volume in spec.get("volumes", []):
        for source in volume.get("projected", {}).get("sources", []):
            ref = source.get("secret") or {}
            if any(item["key"] == "AWS_ACCESS_KEY_ID" for item in ref.get("items", [])):
                key = chart.secret_value(ref["name"], "AWS_ACCESS_KEY_ID")
                secret = chart.secret_value(ref["name"], "AWS_SECRET_ACCESS_KEY")
                assert key and secret, f"Secret {ref['name']} holds no S3 credentials"
                return key, secret
    raise AssertionError("the MinIO pod mounts no S3 credentials")


def seaweedfs_in_place_of(minio: ContainerRun, chart: Chart) -> ContainerRun:
    """The MinIO container's security, limits, volumes and credentials, running `weed mini` instead."""
    s3_port = minio.ports.get("s3") or next(iter(minio.ports.values()))
    taken = {int(p["containerPort"]) for c in chart.all_containers() for p in c.get("ports", [])}
    grpc = s3_port + 10000
    assert not taken & {*WEED_PORTS.values(), grpc}, "a weed port collides with a chart container's port"
    argv = [
        WEED_IN_CONTAINER, "mini", "-dir=/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-s3.port={s3_port}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
        "-master.telemetry=false", "-volume.preStopSeconds=0",
        f"-s3.port.grpc={grpc}", *(f"-{name}={port}" for name, port in WEED_PORTS.items()),
    ]  # fmt: skip
    key, secret = s3_credentials(chart)
    env = {**minio.env, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    readiness = {"httpGet": {"path": "/healthz", "port": s3_port}}
    mounts = [*minio.mounts, f"type=bind,source={weed_binary()},target={WEED_IN_CONTAINER},readonly"]
    return dataclasses.replace(minio, entrypoint=argv, args=[], env=env, readiness=readiness, mounts=mounts)


def create_buckets(pod: Pod, port: int, key: str, secret: str, buckets: set[str]) -> None:
    """Create the buckets through the S3 API (the chart's bucket Job uses MinIO's `mc`)."""
    client = boto3.client(
        "s3",
        endpoint_url=pod.bridge(port).url,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, proxies={}),
    )
    deadline = time.monotonic() + READY_TIMEOUT
    pending = set(buckets)
    while pending:
        bucket = next(iter(pending))
        try:
            client.create_bucket(Bucket=bucket)
            client.put_object(Bucket=bucket, Key=".probe", Body=b"ok")
            client.get_object(Bucket=bucket, Key=".probe")["Body"].read()
            client.delete_object(Bucket=bucket, Key=".probe")
            pending.discard(bucket)
        except Exception as e:  # the filer or volume server is still starting
            if time.monotonic() > deadline:
                raise PodError(f"bucket {bucket} not usable: {e}") from e
            time.sleep(1)


@pytest.fixture(scope="module")
def release(docker_engine: DockerEngine, built_images: BuiltImages) -> Iterator[Release]:
    """The chart's containers running: object store, MLflow, receiver, seed (done), predictor, facade."""
    chart = rendered_chart()
    csv = real_csv()
    with tempfile.TemporaryDirectory(prefix="btcf-ct-") as tmp:
        workdir = Path(tmp)
        pod = Pod(docker_engine, workdir)
        key_files = {
            (cm["metadata"]["name"], key): csv
            for cm in chart.objects("ConfigMap")
            for key in cm.get("data", {})
            if key.endswith(".csv")
        }

        def run_of(component: str, container: str, kind: str = "Deployment") -> ContainerRun:
            workload = chart.workload(component, kind)
            return container_run(chart, workload, container, files_dir=workdir, key_files=key_files)

        runs: dict[str, ContainerRun] = {}
        names: dict[str, str] = {}
        seed_logs: dict[str, str] = {}
        try:
            pod.start(built_images.ref("predictor"))
            minio = run_of("minio", "minio")
            runs["s3"] = seaweedfs_in_place_of(minio, chart)
            names["s3"] = pod.run("s3", runs["s3"], image=built_images.ref("predictor"))
            pod.wait_ready(names["s3"], runs["s3"], timeout=READY_TIMEOUT)
            create_buckets(
                pod,
                minio.ports.get("s3") or next(iter(minio.ports.values())),
                runs["s3"].env["AWS_ACCESS_KEY_ID"],
                runs["s3"].env["AWS_SECRET_ACCESS_KEY"],
                s3_buckets(chart),
            )
            for component in ("mlflow", "callback"):
                runs[component] = run_of(component, component)
                names[component] = pod.run(component, runs[component])
            for component in ("mlflow", "callback"):
                pod.wait_ready(names[component], runs[component], timeout=READY_TIMEOUT)

            seed_job = chart.workload("seed", "Job")
            spec = seed_job["spec"]["template"]["spec"]
            for c in [*spec.get("initContainers", []), *spec["containers"]]:
                run = run_of("seed", c["name"], "Job")
                seed_logs[c["name"]] = pod.run_to_completion(f"seed-{c['name']}", run, timeout=SEED_TIMEOUT)

            runs["predictor"] = run_of("predictor", "kserve-container")
            names["predictor"] = pod.run("predictor", runs["predictor"])
            pod.wait_ready(names["predictor"], runs["predictor"], timeout=READY_TIMEOUT)
            runs["facade"] = run_of("facade", "facade")
            names["facade"] = pod.run("facade", runs["facade"])
            pod.wait_ready(names["facade"], runs["facade"], timeout=READY_TIMEOUT)
            yield Release(pod, chart, runs, names, seed_logs)
        finally:
            pod.remove()


def test_every_image_is_built_and_runs_as_uid_10001(
    docker_engine: DockerEngine, built_images: BuiltImages
) -> None:
    for component in COMPONENTS:
        user = docker_engine.docker("image", "inspect", "-f", "{{.Config.User}}", built_images.ref(component))
        assert user.strip() == "10001:10001", component
        assert built_images.sizes[component] > 0


def test_no_build_time_pip_settings_wheels_or_sources_reach_the_final_images(
    docker_engine: DockerEngine, built_images: BuiltImages
) -> None:
    leftovers = "import os; print([p for p in ('/etc/btcf-pip', '/wheels', '/src') if os.path.exists(p)])"
    for component in COMPONENTS:
        out = docker_engine.docker(
            "run", "--rm", "--network", "none", "--entrypoint", "python", built_images.ref(component),
            "-c", leftovers,
        )  # fmt: skip
        assert out.strip() == "[]", component


def test_the_mlflow_image_serves_standalone_with_allowed_hosts_from_its_environment(
    docker_engine: DockerEngine, built_images: BuiltImages
) -> None:
    with tempfile.TemporaryDirectory(prefix="btcf-ct-") as tmp:
        pod = Pod(docker_engine, Path(tmp), name="btcf-ct-mlflow")
        try:
            pod.start(built_images.ref("mlflow"))
            name = pod.run_image("mlflow", built_images.ref("mlflow"))  # its own CMD, user and /data
            pod.wait_http(name, 5000, "/health", timeout=READY_TIMEOUT)
            search = "/api/2.0/mlflow/experiments/search?max_results=1"
            with pod.client(5000, timeout=30) as client:
                assert client.get(search, headers={"Host": "mlflow:5000"}).status_code == 200
                assert client.get(search, headers={"Host": "evil.example:5000"}).status_code == 403
            assert pod.inspect(name)["Config"]["User"] == "10001:10001"
            assert pod.state(name)["Running"]  # its sqlite database lives in /data, written by uid 10001
        finally:
            pod.remove()


def test_the_seed_job_trains_the_backtests_from_the_real_csv(release: Release) -> None:
    name = release.runs["predictor"].env["MODEL_NAME"]
    with release.pod.client(release.port("mlflow"), timeout=60) as mlflow:
        model = mlflow.get("/api/2.0/mlflow/registered-models/get", params={"name": name})
    assert model.status_code == 200, model.text
    aliases = {a["alias"] for a in model.json()["registered_model"].get("aliases", [])}
    assert {"production", "backtest_20250327"} <= aliases


def test_the_facade_container_answers_health(release: Release) -> None:
    with release.pod.client(release.port("facade"), timeout=60) as facade:
        response = facade.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok", response.text


def test_the_facade_container_predicts_for_a_backtest_alias(release: Release) -> None:
    with release.pod.client(release.port("facade"), timeout=300) as facade:
        response = facade.post("/predict", params={"alias": "20250327"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_alias"] == "backtest_20250327"
    assert body["start_date"] == "2025-03-27 00:00:00"
    assert body["predictions"] and all(isinstance(p["prediction"], float) for p in body["predictions"])


def test_the_facade_container_serves_the_champion(release: Release) -> None:
    with release.pod.client(release.port("facade"), timeout=300) as facade:
        response = facade.get("/predict-champion")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["start_date"] == release.runs["facade"].env["CHAMPION_START"] + " 00:00:00"
    assert body["predictions"]


def test_the_predictor_container_answers_v2_inference(release: Release) -> None:
    command = release.runs["predictor"].command_line()
    model = command[command.index("--model_name") + 1]
    bars = read_csv(real_csv())
    start = pd.Timestamp("2025-04-10", tz="UTC")
    end = start + pd.Timedelta(hours=23)
    features = compute_features(bars.loc[history_start(start) - pd.Timedelta(hours=48) : end])
    windows, _ = windows_for_range(features, start, end)
    body = {
        "inputs": [
            {
                "name": "windows",
                "shape": list(windows.shape),
                "datatype": "FP32",
                "data": windows.ravel().tolist(),
            }
        ]
    }
    with release.pod.client(release.port("predictor"), timeout=120) as predictor:
        response = predictor.post(f"/v2/models/{model}/infer", json=body)
    assert response.status_code == 200, response.text
    outputs = {o["name"]: np.asarray(o["data"], np.float64) for o in response.json()["outputs"]}
    assert set(outputs) == {"close", "close_p10", "close_p90"}
    assert all(values.shape == (len(windows),) and np.isfinite(values).all() for values in outputs.values())
    assert (outputs["close_p10"] <= outputs["close"]).all()
    assert (outputs["close"] <= outputs["close_p90"]).all()
    assert response.json()["parameters"]["model_alias"] == release.runs["predictor"].env["MODEL_ALIAS"]


def test_the_containers_run_with_the_charts_user_read_only_root_and_no_capabilities(release: Release) -> None:
    for component, name in release.names.items():
        run = release.runs[component]
        info = release.pod.inspect(name)
        assert info["Config"]["User"] == f"{run.user}:{run.group}" != "0:0", component
        assert info["HostConfig"]["ReadonlyRootfs"] is run.read_only is True, component
        assert "ALL" in run.cap_drop and info["HostConfig"]["CapDrop"] == run.cap_drop, component
        assert "no-new-privileges" in (info["HostConfig"]["SecurityOpt"] or []), component
        ids = release.pod.engine.docker(
            "exec", name, "python", "-c", "import os; print(os.getuid(), os.getgid())"
        )
        assert ids.split() == [str(run.user), str(run.group)], component
        write = release.pod.engine.docker_result("exec", name, "python", "-c", "open('/probe', 'w')")
        assert write.returncode != 0 and "Read-only file system" in write.stderr, component
