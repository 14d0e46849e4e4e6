"""The bundled PostgreSQL (postgresql.bundled.enabled): one server in the release whose URLs the
facade, the receiver and MLflow read from one Secret, closed to every other pod."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

import pytest
from chart_helpers import find, pod_spec_of

BUNDLED: dict[str, Any] = {"postgresql": {"bundled": {"enabled": True}}}
SECRET = "btc-forecast-database"


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def database_secret(docs) -> dict[str, str]:
    [secret] = [s for s in find(docs, "Secret") if s["metadata"]["name"] == SECRET]
    return decoded(secret)


def secret_items(pod: dict[str, Any], name: str) -> list[dict[str, str]]:
    [secrets] = [v for v in pod["volumes"] if v["name"] == "secrets"]
    return [
        item
        for s in secrets["projected"]["sources"]
        if s["secret"]["name"] == name
        for item in s["secret"]["items"]
    ]


def test_off_by_default(render) -> None:
    docs = render({})
    assert not find(docs, "StatefulSet")
    assert not [d for d in docs if d["metadata"]["name"] == "btc-forecast-postgresql"]


def test_the_urls_point_at_the_bundled_service_with_the_generated_password(render) -> None:
    values = database_secret(render(BUNDLED))
    password = values["POSTGRES_PASSWORD"]
    assert len(password) == 32 and password.isalnum()
    for key, scheme, database in (
        ("DATABASE_URL", "postgresql", "btcf"),
        ("MLFLOW_BACKEND_STORE_URI", "postgresql+psycopg2", "mlflow"),
    ):
        url = urlsplit(values[key])
        assert (url.scheme, url.username, url.password) == (scheme, "btcf", password)
        assert (url.hostname, url.port, url.path) == ("btc-forecast-postgresql", 5432, f"/{database}")


def test_facade_and_receiver_share_one_database_and_mlflow_has_its_own(render) -> None:
    """One server; MLflow's migrations own a database of their own."""
    docs = render(BUNDLED)
    for component, key in (
        ("facade", "DATABASE_URL"),
        ("callback", "DATABASE_URL"),
        ("mlflow", "MLFLOW_BACKEND_STORE_URI"),
    ):
        [dep] = find(docs, "Deployment", component)
        assert secret_items(pod_spec_of(dep), SECRET) == [{"key": key, "path": key}], component
        assert not find(docs, "PersistentVolumeClaim", component), component


def test_the_server_creates_both_databases_owned_by_the_login_role(render) -> None:
    [sts] = find(render(BUNDLED), "StatefulSet", "postgresql")
    [container] = pod_spec_of(sts)["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["POSTGRES_USER"] == "btcf"
    assert env["POSTGRES_DB"].split() == ["btcf", "mlflow"]
    assert env["POSTGRES_PASSWORD_FILE"].endswith("/POSTGRES_PASSWORD")
    assert "POSTGRES_PASSWORD" not in env
    assert secret_items(pod_spec_of(sts), SECRET) == [
        {"key": "POSTGRES_PASSWORD", "path": "POSTGRES_PASSWORD"}
    ]


def test_more_than_one_facade_or_receiver_is_allowed_with_it(render) -> None:
    docs = render(
        {**BUNDLED, "facade": {"replicas": 2, "autoscaling": {"enabled": True}}, "callback": {"replicas": 2}}
    )
    [callback] = find(docs, "Deployment", "callback")
    assert callback["spec"]["replicas"] == 2
    assert find(docs, "HorizontalPodAutoscaler", "facade")


def test_bundled_and_external_together_are_refused(render) -> None:
    with pytest.raises(Exception, match="exclusive"):
        render({"postgresql": {"bundled": {"enabled": True}, "external": {"url": "postgresql://a:b@db/x"}}})


def test_one_server_on_its_own_claim_probed_with_pg_isready(render) -> None:
    [sts] = find(render(BUNDLED), "StatefulSet", "postgresql")
    assert sts["spec"]["replicas"] == 1
    assert sts["spec"]["serviceName"] == "btc-forecast-postgresql"
    [claim] = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "8Gi"
    assert "helm.sh/chart" not in claim["metadata"]["labels"]
    [container] = pod_spec_of(sts)["containers"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["exec"]["command"][0] == "pg_isready", probe
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/var/lib/postgresql/data"] == "data"
    assert mounts["/var/run/postgresql"] == "run"


def test_without_persistence_the_data_is_an_empty_dir(render) -> None:
    [sts] = find(
        render({"postgresql": {"bundled": {"enabled": True, "persistence": {"enabled": False}}}}),
        "StatefulSet",
    )
    assert "volumeClaimTemplates" not in sts["spec"]
    [data] = [v for v in pod_spec_of(sts)["volumes"] if v["name"] == "data"]
    assert data == {"name": "data", "emptyDir": {}}


def test_runs_as_the_images_non_root_postgres_user_on_a_read_only_root(render) -> None:
    [sts] = find(render(BUNDLED), "StatefulSet", "postgresql")
    pod = pod_spec_of(sts)
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    [container] = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_the_service_is_headless_on_the_postgresql_port(render) -> None:
    [svc] = [
        s for s in find(render(BUNDLED), "Service") if s["metadata"]["name"] == "btc-forecast-postgresql"
    ]
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["ports"] == [
        {"name": "postgresql", "port": 5432, "targetPort": "postgresql", "protocol": "TCP"}
    ]


def test_only_facade_receiver_and_mlflow_may_connect(render) -> None:
    [policy] = find(render(BUNDLED), "NetworkPolicy", "postgresql")
    [rule] = policy["spec"]["ingress"]
    assert {p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in rule["from"]} == {
        "facade",
        "callback",
        "mlflow",
    }
    assert all(set(p) == {"podSelector"} for p in rule["from"])
    assert rule["ports"] == [{"protocol": "TCP", "port": 5432}]


def test_no_policy_when_network_policies_are_off(render) -> None:
    docs = render({**BUNDLED, "networkPolicy": {"enabled": False}})
    assert not find(docs, "NetworkPolicy")


def test_the_password_is_kept_on_uninstall_with_the_claim(render) -> None:
    [secret] = [s for s in find(render(BUNDLED), "Secret") if s["metadata"]["name"] == SECRET]
    assert secret["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    no_claim = {"postgresql": {"bundled": {"enabled": True, "persistence": {"enabled": False}}}}
    [secret] = [s for s in find(render(no_claim), "Secret") if s["metadata"]["name"] == SECRET]
    assert "annotations" not in secret["metadata"]
