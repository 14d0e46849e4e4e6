"""The chart's pods, for real: `helm install` on a kubelet node runs every component from our images.

The node (tests.k8s.node: control plane, Docker engine, kubelet, kube-proxy, cluster DNS, hostPath
volumes, all inside a sandbox of its own) runs the chart as a user installs it, with the images
`make images` built (never pulled) and an external S3 object store: SeaweedFS, run as a Deployment
from the app image (no MinIO image can be had here). The seed Job trains from the real hourly CSV
($BTC_DATA_CSV), which the node serves over HTTP to the seed's init container.

The release is the "room to grow" profile, not the defaults: the bundled PostgreSQL (a StatefulSet from
our postgres image) shared by MLflow, the facade and the receiver, and two facade and two receiver
replicas (plain replicas: the 1.20 node has no metrics server for an autoscaler). Only a kubelet runs
that StatefulSet, its claim, its probes and two replicas of each stateful component sharing one
database, so every test below (seed, /predict, callbacks, port-forward, rollout, uninstall) runs through
PostgreSQL here, and two tests look into the database itself. The default profile (sqlite on each
component's claim, one replica) stays covered where it was: the containers' tests run the chart's
containers with it, the `kube` chart tests install the defaults on the real API server.

The tests share one release and run in file order: they read it, then move its ModelAlias, then
uninstall it. Every wait is a bounded poll; nothing asserts on timing. Figures (start and install
times, memory) are printed in the terminal summary.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from btcforecast.devservers.seaweedfs import weed_binary
from tests.containers.images import build_images
from tests.k8s import helm
from tests.k8s.docker_engine import DOCKER_DIR, build_engine
from tests.k8s.helm import wait_for
from tests.k8s.node import Node
from tests.k8s.paths import kubectl
from tests.k8s.sandbox import host_network_state

# Setup (images, node, install, the seed's training) counts against the first test's timeout.
pytestmark = [pytest.mark.node, pytest.mark.timeout(3600)]

NAMESPACE = "btcf"
RELEASE = "btcf"
CHART_VALUES = yaml.safe_load((helm.CHART / "values.yaml").read_text())
TAG = CHART_VALUES["predictor"]["image"]["tag"]  # one tag for all our images
IMAGES = ("predictor", "facade", "callback", "operator", "mlflow", "postgres")
# the "room to grow" profile (module docstring): component -> replicas
REPLICAS = {"postgresql": 1, "mlflow": 1, "predictor": 1, "facade": 2, "callback": 2, "operator": 1}
APP_IMAGE = f"btc-forecast/callback:{TAG}"  # python and the project's venv (`weed` included)
# The engine's data root: the one `make images` builds into, where the node builds them first; a
# developer may point it at another that already holds the images.
SHARED_DATA_ROOT = DOCKER_DIR / "data"
DATA_ROOT = Path(os.environ.get("BTCF_NODE_DATA_ROOT") or SHARED_DATA_ROOT)
CSV = Path(os.environ.get("BTC_DATA_CSV", "/work/shared/data/btc_usd_1h.csv"))
S3_SECRET = "object-store"
S3_KEYS = {"AWS_ACCESS_KEY_ID": "btcf-node-test", "AWS_SECRET_ACCESS_KEY": "node-test-secret-key-0123456789"}
PREDICTIONS_FROM_20250327 = 3048  # hours from 2025-03-27 00:00 to the CSV's last bar, 2025-07-31 23:00
INSTALL_TIMEOUT = 1200
ROLLOUT_TIMEOUT = 600
RESTRICTED = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def component(name: str) -> str:
    """Object name of a chart component: <release>-<chart>-<component>."""
    return f"{RELEASE}-btc-forecast-{name}"


FACADE = f"http://{component('facade')}:8000"
POSTGRES_POD = f"{component('postgresql')}-0"  # the StatefulSet's one pod
# kept by `helm uninstall` (global.keepVolumesOnUninstall), with the claim whose cluster it opens
DATABASE_SECRET = f"{RELEASE}-btc-forecast-database"
DATABASE_CLAIM = f"data-{POSTGRES_POD}"  # a StatefulSet's claim outlives it
RECEIVER = f"http://{component('callback')}:9001"
WEED_IN_CONTAINER = "/opt/btcf-test/weed"  # the host's static `weed`, a read-only hostPath (test only)


# -- what the test applies besides the chart --------------------------------------------------------
def seaweedfs_objects() -> list[dict[str, Any]]:
    """The release's external S3 store (objectStore.mode=external): `weed mini`, the host venv's static
    binary mounted read-only into an app-image container (the lean images do not carry SeaweedFS)."""
    labels = {"app.kubernetes.io/name": "seaweedfs", "app.kubernetes.io/part-of": "node-test"}
    weed = [
        WEED_IN_CONTAINER, "mini", "-dir=/data", "-ip=127.0.0.1", "-ip.bind=0.0.0.0", "-s3.port=8333",
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
        "-master.telemetry=false", "-bucket=mlflow,market-data",
    ]  # fmt: skip
    container = {
        "name": "weed",
        "image": APP_IMAGE,
        "imagePullPolicy": "Never",
        "command": weed,
        "env": [
            {"name": key, "valueFrom": {"secretKeyRef": {"name": S3_SECRET, "key": key}}} for key in S3_KEYS
        ],
        "ports": [{"name": "s3", "containerPort": 8333, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "s3"}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": RESTRICTED,
        "volumeMounts": [
            {"name": "data", "mountPath": "/data"},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "weed", "mountPath": WEED_IN_CONTAINER, "readOnly": True},
        ],
    }
    meta = {"name": "seaweedfs", "namespace": NAMESPACE, "labels": labels}
    pod_spec = {
        "automountServiceAccountToken": False,
        "containers": [container],
        "volumes": [
            {"name": "data", "emptyDir": {}},
            {"name": "tmp", "emptyDir": {}},
            {"name": "weed", "hostPath": {"path": weed_binary(), "type": "File"}},
        ],
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": S3_SECRET, "namespace": NAMESPACE},
            "stringData": S3_KEYS,
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": pod_spec},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {
                "selector": labels,
                "ports": [{"name": "s3", "port": 8333, "targetPort": "s3", "protocol": "TCP"}],
            },
        },
    ]


def probe_pod() -> dict[str, Any]:
    """A plain client pod: its requests go through Service names, cluster DNS and kube-proxy."""
    container = {
        "name": "probe",
        "image": APP_IMAGE,
        "imagePullPolicy": "Never",
        "command": ["python", "-c", "import time; time.sleep(10**9)"],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": RESTRICTED,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "probe",
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/part-of": "node-test"},
        },
        "spec": {
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "containers": [container],
        },
    }


# Runs in the probe pod: one request, prints the status line then the body.
IN_CLUSTER_REQUEST = """
import sys, urllib.error, urllib.request
method, url = sys.argv[1], sys.argv[2]
request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
try:
    with urllib.request.urlopen(request, timeout=240) as response:
        print(response.status); sys.stdout.write(response.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); sys.stdout.write(e.read().decode())
"""


@dataclass
class Release:
    node: Node
    started: datetime
    figures: dict[str, float] = field(default_factory=dict)

    def kubectl(self, *args: str, **kwargs: Any) -> str:
        return self.node.kubectl("-n", NAMESPACE, *args, **kwargs)

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json"))

    def in_cluster(self, method: str, url: str) -> tuple[int, Any]:
        """``method url`` sent from the probe pod; (status, JSON body or text)."""
        out = self.kubectl(
            "exec", "probe", "--", "python", "-c", IN_CLUSTER_REQUEST, method, url, timeout=300
        )
        status, _, body = out.partition("\n")
        try:
            return int(status), json.loads(body)
        except ValueError:
            return int(status), body


def pods_ready(release: Release) -> bool:
    """Every pod of the namespace is Ready, finished Job pods aside."""
    pods = [p for p in release.get("pods")["items"] if p["status"].get("phase") != "Succeeded"]
    return bool(pods) and all(condition(p, "Ready") == "True" for p in pods)


def seed_succeeded(release: Release) -> bool:
    jobs = release.get("jobs", "-l", "app.kubernetes.io/component=seed")["items"]
    return bool(jobs) and all(j["status"].get("succeeded") for j in jobs)


def condition(obj: dict[str, Any], kind: str, field_name: str = "status") -> Any:
    return next((c.get(field_name) for c in obj["status"].get("conditions", []) if c["type"] == kind), None)


def predictor_pods(release: Release) -> dict[str, str]:
    """name -> uid of the predictor's pods that are not on their way out."""
    pods = release.get("pods", "-l", "app.kubernetes.io/component=predictor")["items"]
    return {
        p["metadata"]["name"]: p["metadata"]["uid"]
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
    }


def seconds_since(start: datetime, stamp: str) -> float:
    return (datetime.fromisoformat(stamp.replace("Z", "+00:00")) - start).total_seconds()


def pod_label(pod: dict[str, Any]) -> str:
    labels = pod["metadata"].get("labels", {})
    return (
        labels.get("app.kubernetes.io/component")
        or labels.get("app.kubernetes.io/name")
        or pod["metadata"]["name"]
    )


def install_figures(release: Release) -> dict[str, float]:
    """Per component: when its first pod turned Ready (API timestamps, 1 s), container restarts (e.g.
    liveness probes giving up on a slow start) and memory working set; and how long the seed took."""
    figures: dict[str, float] = {}
    rss = release.node.rss()
    for pod in release.get("pods")["items"]:
        name = pod_label(pod)
        stamp = condition(pod, "Ready", "lastTransitionTime")
        if condition(pod, "Ready") == "True" and stamp:
            ready = seconds_since(release.started, stamp)
            figures[f"ready_s/{name}"] = min(figures.get(f"ready_s/{name}", ready), ready)
        restarts = sum(c.get("restartCount", 0) for c in pod["status"].get("containerStatuses", []))
        if restarts:
            figures[f"restarts/{name}"] = figures.get(f"restarts/{name}", 0) + restarts
        memory = rss.get(f"pod/{NAMESPACE}/{pod['metadata']['name']}")
        if memory is not None:
            figures[f"working_set_mib/{name}"] = max(figures.get(f"working_set_mib/{name}", 0), memory)
    for job in release.get("jobs", "-l", "app.kubernetes.io/component=seed")["items"]:
        status = job["status"]
        if status.get("completionTime"):
            figures["seed_job_s"] = seconds_since(release.started, status["completionTime"]) - seconds_since(
                release.started, status["startTime"]
            )
    return figures


def diagnostics(node: Node) -> str:
    """Pods, events and the end of every component's log, for a failure message."""
    parts = [
        node.kubectl("get", "pods", "-A", "-o", "wide", check=False),
        node.kubectl("get", "events", "-A", "--sort-by=.lastTimestamp", check=False)[-4000:],
    ]
    for name, path in node.logs().items():
        try:
            parts.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-15:]))
        except OSError:
            continue
    return "\n".join(parts)


def report(request: pytest.FixtureRequest, what: str, figures: dict[str, Any]) -> None:
    """Print measured figures in the test output, past pytest's capture (docs/figures.md quotes them)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    shown = (f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(figures.items()))
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"\nnode figures ({what}): " + ", ".join(shown))


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def host_before() -> dict[str, str]:
    return host_network_state()


@pytest.fixture(scope="module")
def project_images() -> None:
    """The images of this checkout, on the shared data root: scripts/images.sh on the root-namespace
    build engine (pip needs the network, which the node's namespace has not); cached layers: seconds."""
    if DATA_ROOT != SHARED_DATA_ROOT:
        return
    engine = build_engine()
    engine.start()
    try:
        build_images(engine, TAG)
    finally:
        engine.stop()


@pytest.fixture(scope="module")
def node(
    project_images: None,
    host_before: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Node]:
    assert CSV.is_file(), f"the real hourly CSV is missing: {CSV} (set BTC_DATA_CSV)"
    with Node(tmp_path_factory.mktemp("node"), data_root=DATA_ROOT) as running:
        assert running.engine is not None
        missing = [
            i for i in IMAGES if not running.engine.docker("images", "-q", f"btc-forecast/{i}:{TAG}").strip()
        ]
        assert not missing, f"images missing in {DATA_ROOT}: {missing} (scripts/images.sh)"
        yield running
        components = {k: v for k, v in running.rss().items() if not k.startswith("pod/")}
        report(request, "node", {**running.figures, **{f"rss_mib/{k}": v for k, v in components.items()}})


@pytest.fixture(scope="module")
def release(node: Node, request: pytest.FixtureRequest) -> Iterator[Release]:
    node.kubectl("create", "namespace", NAMESPACE)
    helm.apply_server_side(node.kubeconfig, [*seaweedfs_objects(), probe_pod()], NAMESPACE)
    served = node.workdir / "served"  # the CSV alone, not its neighbours
    served.mkdir()
    (served / CSV.name).symlink_to(CSV.resolve())
    csv_url = f"{node.serve_files(served)}/{CSV.name}"
    values = {
        "global": {"imagePullPolicy": "Never"},
        "objectStore": {
            "mode": "external",
            "external": {"endpoint": "http://seaweedfs:8333", "existingSecret": S3_SECRET},
        },
        "seed": {"data": {"online": False, "csvUrl": csv_url}},
        "ingress": {"enabled": False},
        "postgresql": {"bundled": {"enabled": True}},
        "facade": {"replicas": REPLICAS["facade"]},
        "callback": {"replicas": REPLICAS["callback"]},
    }
    released = Release(node, datetime.now(UTC))
    began = time.monotonic()
    try:
        # as a user does it: `helm install --wait` returns once the Deployments are available
        helm.install(node.kubeconfig, RELEASE, NAMESPACE, values, wait="watcher", timeout=INSTALL_TIMEOUT)
        released.figures["helm_install_wait_s"] = time.monotonic() - began
        wait_for("the seed Job succeeded", lambda: seed_succeeded(released), INSTALL_TIMEOUT, interval=3)
        wait_for("every pod Ready", lambda: pods_ready(released), INSTALL_TIMEOUT, interval=3)
    except BaseException:
        print(diagnostics(node))
        raise
    released.figures["install_to_all_ready_s"] = time.monotonic() - began
    released.figures.update(install_figures(released))
    yield released
    report(request, "release", released.figures)
    node.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


# -- the tests, in the order a user meets them ------------------------------------------------------
def test_every_pod_of_the_chart_runs_ready_from_the_locally_built_images(release: Release) -> None:
    def every_replica_ready() -> Any:
        found = workloads(release)
        ready = all(w["status"].get("readyReplicas") == w["spec"]["replicas"] for w in found.values())
        return found if ready else None

    # the operator may be rolling the predictor to the version the seed registered: a bounded wait
    found = wait_for("every replica of the chart Ready", every_replica_ready, ROLLOUT_TIMEOUT, interval=3)
    assert {name: w["spec"]["replicas"] for name, w in found.items()} == REPLICAS
    pods = release.get("pods")["items"]
    images = {c["image"] for p in pods for c in p["spec"]["containers"]}
    assert {f"btc-forecast/{i}:{TAG}" for i in IMAGES} <= images
    assert all(p["spec"]["nodeName"] == release.node.node_name for p in pods)


def workloads(release: Release) -> dict[str, Any]:
    """component -> the chart's Deployment or StatefulSet running it."""
    items = release.get("deploy,sts", "-l", f"app.kubernetes.io/instance={RELEASE}")["items"]
    return {w["metadata"]["labels"]["app.kubernetes.io/component"]: w for w in items}


def test_seed_job_trained_the_backtests_from_the_real_csv_served_by_the_node(release: Release) -> None:
    job = release.get("jobs", "-l", "app.kubernetes.io/component=seed")["items"][0]
    fetched = release.kubectl("logs", f"job/{job['metadata']['name']}", "-c", "wait-and-fetch")
    assert f"/{CSV.name}" in fetched and release.node.node_ip in fetched
    status, body = release.in_cluster("GET", f"{FACADE}/aliases")
    assert status == 200, body
    assert {"production", "staging", "backtest_20250327"} <= set(body["aliases"])
    status, info = release.in_cluster("GET", f"{FACADE}/btc-info")
    assert status == 200, info
    first_hour = info["datetime"][0][:19].replace("T", " ")
    row = next(line for line in CSV.read_text().splitlines() if line.startswith(first_hour))
    assert float(row.split(",")[4]) == pytest.approx(info["btc_close"][0])


def test_health_answers_through_the_facade_service_by_its_cluster_dns_name(release: Release) -> None:
    status, body = release.in_cluster(
        "GET", f"http://{component('facade')}.{NAMESPACE}.svc.cluster.local:8000/health"
    )
    assert status == 200, body
    assert body["status"] == "ok" and body["model_loaded"] is True


def test_predict_with_a_backtest_alias_through_the_service(release: Release) -> None:
    status, body = release.in_cluster("POST", f"{FACADE}/predict?alias=20250327")
    assert status == 200, body
    assert body["start_date"] == "2025-03-27 00:00:00"
    assert len(body["predictions"]) == PREDICTIONS_FROM_20250327


def test_predict_champion_through_the_service(release: Release) -> None:
    status, body = release.in_cluster("GET", f"{FACADE}/predict-champion")
    assert status == 200, body
    assert body["predictions"][0]["datetime"].startswith("2025-03-27T00:00")
    assert len(body["predictions"]) == PREDICTIONS_FROM_20250327


def submit_callback_job(release: Release, facade: str) -> dict[str, Any]:
    """A /predict job for 20250327 with its result sent to the receiver's Service, accepted (202)."""
    status, job = release.in_cluster(
        "POST", f"{facade}/predict?alias=20250327&callback_url={RECEIVER}/result"
    )
    assert status == 202, job
    return job


def test_callback_reaches_the_receiver_through_its_service(release: Release) -> None:
    job = submit_callback_job(release, FACADE)

    def stored() -> Any:
        code, result = release.in_cluster("GET", f"{RECEIVER}/results/{job['job_id']}")
        return result if code == 200 else None

    result = wait_for("the receiver stored the callback", stored, 300, interval=3)
    assert len(result["payload"]["result"]["predictions"]) == PREDICTIONS_FROM_20250327


def test_a_callback_accepted_by_one_facade_replica_is_delivered_and_visible_through_every_replica(
    release: Release,
) -> None:
    facades, receivers = pod_ips(release, "facade"), pod_ips(release, "callback")
    assert len(facades) == REPLICAS["facade"] and len(receivers) == REPLICAS["callback"]
    job = submit_callback_job(release, f"http://{facades[0]}:8000")
    other = f"http://{facades[1]}:8000/jobs/{job['job_id']}"
    code, seen = release.in_cluster("GET", other)
    assert code == 200, seen  # committed before the 202: the other replica knows it at once

    def settled() -> Any:
        code, seen = release.in_cluster("GET", other)
        return seen if code == 200 and seen["status"] != "pending" else None

    seen = wait_for("the job settled, as the other facade replica sees it", settled, 300, interval=3)
    assert seen["status"] == "delivered", seen
    for receiver in receivers:
        code, result = release.in_cluster("GET", f"http://{receiver}:9001/results/{job['job_id']}")
        assert code == 200, (receiver, result)
        assert len(result["payload"]["result"]["predictions"]) == PREDICTIONS_FROM_20250327


def test_callback_jobs_and_results_are_rows_of_the_bundled_postgresql(release: Release) -> None:
    job = submit_callback_job(release, FACADE)

    def delivered() -> Any:
        code, seen = release.in_cluster("GET", f"{FACADE}/jobs/{job['job_id']}")
        return seen if code == 200 and seen["status"] == "delivered" else None

    wait_for("the job delivered", delivered, 300, interval=3)
    job_id = job["job_id"]
    assert psql(release, "btcf", f"SELECT status FROM facade_jobs WHERE job_id = '{job_id}'") == [
        ["delivered"]
    ]
    assert psql(release, "btcf", f"SELECT count(*) FROM callback_results WHERE job_id = '{job_id}'") == [
        ["1"]
    ]


def test_mlflow_keeps_its_registry_in_the_mlflow_database_of_the_bundled_postgresql(release: Release) -> None:
    model = CHART_VALUES["model"]["name"]
    assert [model] in psql(release, "mlflow", "SELECT name FROM registered_models")
    aliases = psql(release, "mlflow", f"SELECT alias FROM registered_model_aliases WHERE name = '{model}'")
    assert {"production", "staging", "backtest_20250327"} <= {row[0] for row in aliases}


def pod_ips(release: Release, name: str) -> list[str]:
    """Pod IPs of a component's running pods (requests to one replica, past its Service)."""
    pods = release.get("pods", "-l", f"app.kubernetes.io/component={name}")["items"]
    return sorted(
        p["status"]["podIP"]
        for p in pods
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    )


def psql(release: Release, database: str, query: str) -> list[list[str]]:
    """``query`` run by psql inside the PostgreSQL pod (the image's postgres user, over its Unix socket);
    rows of unaligned columns."""
    out = release.kubectl(
        "exec", POSTGRES_POD, "-c", "postgresql", "--",
        "psql", "-X", "-v", "ON_ERROR_STOP=1", "-At", "-F", "\t", "-d", database, "-c", query,
    )  # fmt: skip
    return [line.split("\t") for line in out.splitlines() if line]


def test_health_predict_champion_and_callback_work_through_kubectl_port_forward(release: Release) -> None:
    with (
        port_forward(release, f"svc/{component('facade')}", 8000) as facade,
        port_forward(release, f"svc/{component('callback')}", 9001) as receiver,
        httpx.Client(timeout=240, trust_env=False) as client,
    ):
        assert client.get(f"{facade}/health").json()["status"] == "ok"
        predicted = client.post(f"{facade}/predict", params={"alias": "20250327"})
        champion = client.get(f"{facade}/predict-champion")
        job = client.post(
            f"{facade}/predict", params={"alias": "20250327", "callback_url": f"{RECEIVER}/result"}
        )
        assert predicted.status_code == 200 and champion.status_code == 200 and job.status_code == 202
        assert (
            len(predicted.json()["predictions"])
            == len(champion.json()["predictions"])
            == PREDICTIONS_FROM_20250327
        )

        def stored() -> Any:
            result = client.get(f"{receiver}/results/{job.json()['job_id']}")
            return result.json() if result.status_code == 200 else None

        result = wait_for("the receiver stored the callback", stored, 300, interval=2)
    assert len(result["payload"]["result"]["predictions"]) == PREDICTIONS_FROM_20250327


@contextmanager
def port_forward(release: Release, target: str, port: int) -> Iterator[str]:
    """`kubectl port-forward TARGET :PORT` from the host; yields the local base URL."""
    forward = subprocess.Popen(
        [
            str(kubectl()),
            f"--kubeconfig={release.node.kubeconfig}",
            "-n",
            NAMESPACE,
            "port-forward",
            target,
            f":{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()  # "Forwarding from 127.0.0.1:PORT -> 8000"
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert match, line
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        forward.terminate()
        forward.wait(timeout=30)


def test_applying_a_modelalias_moved_to_another_alias_rolls_the_predictor_pods(release: Release) -> None:
    alias = release.get("modelaliases")["items"][0]
    name, serving, before = (
        alias["metadata"]["name"],
        alias["status"].get("resolvedVersion"),
        predictor_pods(release),
    )
    moved = {
        "apiVersion": alias["apiVersion"],
        "kind": "ModelAlias",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {**alias["spec"], "alias": "backtest_20250327"},
    }
    began = time.monotonic()
    release.kubectl("apply", "-f", "-", input=json.dumps(moved))

    def rolled_out() -> Any:
        current = release.get("modelalias", name)
        status = current.get("status", {})
        pods = predictor_pods(release)
        done = (
            status.get("phase") == "Ready"
            and status.get("observedGeneration") == current["metadata"]["generation"]
            and pods
            and not set(pods.values()) & set(before.values())
            and pods_ready(release)
        )
        return status if done else None

    status = wait_for(
        "the predictor rolled out to backtest_20250327", rolled_out, ROLLOUT_TIMEOUT, interval=2
    )
    release.figures["modelalias_rollout_s"] = time.monotonic() - began
    assert status["resolvedVersion"] != serving
    code, health = release.in_cluster("GET", f"{FACADE}/health")
    assert code == 200 and health["model_version"] == status["resolvedVersion"], health


def test_the_host_network_and_sysctls_are_untouched_while_the_node_runs(
    release: Release, host_before: dict[str, str]
) -> None:
    assert host_network_state() == host_before


def test_helm_uninstall_leaves_no_stuck_resource(release: Release) -> None:
    began = time.monotonic()
    helm.uninstall(release.node.kubeconfig, RELEASE, NAMESPACE, wait="watcher")
    kinds = "deploy,sts,rs,pods,svc,jobs,cm,secrets,sa,roles,rolebindings,pdb,networkpolicies,modelaliases"
    kept = {f"secret/{DATABASE_SECRET}"}  # helm.sh/resource-policy: keep, with the claim it unlocks

    def only_claims_and_their_secret_left() -> bool:
        left = release.kubectl("get", kinds, "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "name")
        return set(left.split()) == kept

    wait_for(
        "nothing of the release left but its claims and the database Secret kept with them",
        only_claims_and_their_secret_left,
        300,
        interval=2,
    )
    release.figures["helm_uninstall_s"] = time.monotonic() - began
    claims = release.kubectl("get", "pvc", "-o", "name").split()
    assert claims == [
        f"persistentvolumeclaim/{DATABASE_CLAIM}"
    ]  # the sqlite claims are not made with a database
    release.node.kubectl("delete", "namespace", NAMESPACE, "--timeout=300s")  # finalizers would hold it
    assert f"namespace/{NAMESPACE}" not in release.node.kubectl("get", "namespaces", "-o", "name").split()
