"""The bundled PostgreSQL image (postgres/Dockerfile: Debian bookworm's postgresql package) runs as
the chart's StatefulSet says: uid 10001, read-only root, no capabilities, its password from the chart's
Secret as a file. On its first start it runs initdb into the volume and creates the login role and the
databases; psycopg connects with the URLs the chart gives the facade and MLflow; a restart keeps the data.

Only this image is built here (docker build of postgres/Dockerfile on the project's base, as
scripts/images.sh builds it): the other images are not needed, and their build takes minutes.
chartpod knows no projected volume and no claim template, so the pod spec is given the equivalent
ones it knows: the projected Secret as a Secret volume with the same items, the claim as a host folder.
"""

from __future__ import annotations

import copy
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import yaml

from callback.store import PostgresResultStore
from facade.job_store import PostgresJobStore
from tests.chart.chart_helpers import CHART, NAMESPACE, RELEASE
from tests.containers.chartpod import Chart, ContainerRun, container_run
from tests.containers.images import LOCAL_BASE, ROOT
from tests.containers.pod import Pod, PodError
from tests.k8s.docker_engine import DockerEngine

pytestmark = pytest.mark.containers

VALUES = {"postgresql": {"bundled": {"enabled": True}}, "facade": {"replicas": 2}}
SECRET = f"{RELEASE}-database"
READY_TIMEOUT = 180.0


@dataclass
class Database:
    pod: Pod
    chart: Chart
    run: ContainerRun
    name: str

    def url(self, key: str, *, password: str | None = None) -> str:
        """The chart's URL `key` for psycopg (no SQLAlchemy driver), its host the pod's port bridge."""
        url = urlsplit(self.chart.secret_value(SECRET, key) or "")
        bridge = self.pod.bridge(5432)
        auth = f"{url.username}:{password if password is not None else url.password}"
        return urlunsplit(("postgresql", f"{auth}@{bridge.host}:{bridge.host_port}", url.path, "", ""))

    def probe(self, probe: str) -> subprocess.CompletedProcess[str]:
        command = self.run_spec[probe]["exec"]["command"]
        return self.pod.engine.docker_result("exec", self.name, *command)

    @property
    def run_spec(self) -> dict[str, Any]:
        return container_of(self.chart)


def rendered() -> Chart:
    import helm_python as helm

    with helm.Chart.load(CHART) as chart:
        files = chart.render(values=VALUES, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs = [
        d for p, t in sorted(files.items()) if not p.endswith("NOTES.txt") for d in yaml.safe_load_all(t) if d
    ]
    return Chart(tuple(docs), NAMESPACE)


def container_of(chart: Chart) -> dict[str, Any]:
    [container] = chart.workload("postgresql", "StatefulSet")["spec"]["template"]["spec"]["containers"]
    return container


def image_of(chart: Chart) -> str:
    return container_of(chart)["image"]


def with_volumes_chartpod_knows(sts: dict[str, Any]) -> dict[str, Any]:
    sts = copy.deepcopy(sts)
    pod = sts["spec"]["template"]["spec"]
    for volume in pod["volumes"]:
        if "projected" in volume:
            [source] = volume.pop("projected")["sources"]
            volume["secret"] = {"secretName": source["secret"]["name"], "items": source["secret"]["items"]}
    for claim in sts["spec"].pop("volumeClaimTemplates", []):
        pod["volumes"].append(
            {"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": "x"}}
        )
    return sts


@pytest.fixture(scope="module")
def postgres_image(docker_engine: DockerEngine) -> str:
    """postgres/Dockerfile built on the project's base (made by scripts/base-image.sh if missing)."""
    env = {**os.environ, **docker_engine.env()}
    base = subprocess.run(
        [str(ROOT / "scripts" / "base-image.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    ).stdout.split()[-1]
    assert base == LOCAL_BASE
    ref = image_of(rendered())
    docker_engine.docker(
        "build", "--network", "host", "--build-arg", f"PYTHON_IMAGE={base}",
        "-f", str(ROOT / "postgres" / "Dockerfile"), "-t", ref, str(ROOT), timeout=1800,
    )  # fmt: skip
    return ref


@pytest.fixture(scope="module")
def database(docker_engine: DockerEngine, postgres_image: str) -> Iterator[Database]:
    chart = rendered()
    with tempfile.TemporaryDirectory(prefix="btcf-ct-pg-") as tmp:
        sts = with_volumes_chartpod_knows(chart.workload("postgresql", "StatefulSet"))
        run = container_run(chart, sts, "postgresql", files_dir=Path(tmp))
        assert run.image == postgres_image
        pod = Pod(docker_engine, Path(tmp), name="btcf-ct-postgres")
        try:
            pod.start(postgres_image)
            name = pod.run("postgresql", run)
            db = Database(pod, chart, run, name)
            wait_ready(db)
            yield db
        finally:
            pod.remove()


def wait_ready(db: Database) -> None:
    """Until the chart's readinessProbe (pg_isready) passes in the container."""
    deadline = time.monotonic() + READY_TIMEOUT
    while db.probe("readinessProbe").returncode != 0:
        if not db.pod.state(db.name)["Running"] or time.monotonic() > deadline:
            raise PodError(f"{db.name} not ready:\n{db.pod.logs(db.name)}")
        time.sleep(1)


def test_runs_as_the_charts_non_root_user_on_a_read_only_root(database: Database) -> None:
    config = database.pod.inspect(database.name)
    assert config["Config"]["User"] == "10001:10001"
    assert config["HostConfig"]["ReadonlyRootfs"] is True
    assert config["HostConfig"]["CapDrop"] == ["ALL"]
    top = database.pod.engine.docker("top", database.name, "-o", "pid,uid,comm")
    assert all(line.split()[1] == "10001" for line in top.splitlines()[1:] if line.strip()), top


def test_first_start_creates_the_role_and_both_databases(database: Database) -> None:
    assert "initdb into /var/lib/postgresql/data/pgdata" in database.pod.logs(database.name, tail=None)
    for key, name in (("DATABASE_URL", "btcf"), ("MLFLOW_BACKEND_STORE_URI", "mlflow")):
        with psycopg.connect(database.url(key), connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT current_database(), current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
        assert row == (name, "btcf", False)


def test_a_wrong_password_is_refused(database: Database) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(database.url("DATABASE_URL", password="not-the-password"), connect_timeout=10).close()


def test_every_probe_command_of_the_chart_passes(database: Database) -> None:
    for probe in ("readinessProbe", "startupProbe", "livenessProbe"):
        assert database.probe(probe).returncode == 0, probe


def test_a_restart_keeps_the_data_and_runs_no_second_initdb(database: Database) -> None:
    with psycopg.connect(database.url("DATABASE_URL"), connect_timeout=10) as conn:
        conn.execute("CREATE TABLE kept (v TEXT)")
        conn.execute("INSERT INTO kept VALUES ('before the restart')")
    database.pod.engine.docker("restart", "--time", "30", database.name)
    wait_ready(database)
    with psycopg.connect(database.url("DATABASE_URL"), connect_timeout=10) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [("before the restart",)]
    assert database.pod.logs(database.name, tail=None).count("initdb into") == 1


def test_the_facades_queue_and_the_receivers_results_live_in_it_as_the_login_role(database: Database) -> None:
    """The stores create their tables and work in the btcf database as `btcf` (owner, not superuser)."""
    url = database.url("DATABASE_URL")
    jobs = PostgresJobStore(url, owner="replica-a")
    results = PostgresResultStore(url)
    try:
        job = jobs.create("forecast", {"horizon": 1}, "http://receiver/callback")
        assert [claimed.job_id for claimed in jobs.claim(10, include_own=True)] == [job.job_id]
        assert results.add(job.job_id, {"forecast": [1.0]}, signed_at=None)
        assert results.get(job.job_id) is not None
    finally:
        jobs.close()
        results.close()
    with psycopg.connect(url, connect_timeout=10) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE tableowner = 'btcf'")}
    assert {"facade_jobs", "callback_results"} <= tables


def test_mlflow_migrates_its_own_database_and_serves_from_it(database: Database) -> None:
    """The MLflow image (psycopg2, scram-sha-256) on the chart's MLFLOW_BACKEND_STORE_URI, in the pod."""
    mlflow_image = image_of(database.chart).replace("/postgres:", "/mlflow:")
    found = database.pod.engine.docker_result("image", "inspect", mlflow_image)
    assert found.returncode == 0, f"{mlflow_image} missing: build it with scripts/images.sh"
    backend = database.chart.secret_value(SECRET, "MLFLOW_BACKEND_STORE_URI") or ""
    backend = backend.replace(urlsplit(backend).netloc.split("@")[1], "127.0.0.1:5432")
    name = database.pod.run_image(
        "mlflow", mlflow_image, "--read-only", "--tmpfs", "/tmp",
        command=[
            "mlflow", "server", "--backend-store-uri", backend, "--default-artifact-root", "/tmp/artifacts",
            "--host", "127.0.0.1", "--port", "5000", "--workers", "1",
        ],
    )  # fmt: skip
    database.pod.wait_http(name, 5000, "/health", timeout=READY_TIMEOUT)
    with database.pod.client(5000, timeout=30) as client:
        created = client.post("/api/2.0/mlflow/registered-models/create", json={"name": "btc-lstm"})
        assert created.status_code == 200, created.text
    with psycopg.connect(database.url("MLFLOW_BACKEND_STORE_URI"), connect_timeout=10) as conn:
        assert conn.execute("SELECT name FROM registered_models").fetchall() == [("btc-lstm",)]
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
    with psycopg.connect(database.url("DATABASE_URL"), connect_timeout=10) as conn:
        assert conn.execute("SELECT to_regclass('registered_models')").fetchone() == (None,)
