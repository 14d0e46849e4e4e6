"""The chart wires MLflow's alias webhooks: MLflow may call the operator and the facade, signed."""

from __future__ import annotations

import base64

from chart_helpers import NAMESPACE, containers_of, find
from test_chart_render import env_of, secret_files

OFF = {"webhooks": {"enabled": False}}


def workload(docs, component: str) -> dict:
    [dep] = find(docs, "Deployment", component)
    return dep


def container_env(docs, component: str) -> dict[str, dict]:
    [container] = list(containers_of(workload(docs, component)))
    return env_of(container)


def test_the_operator_receives_webhooks_on_its_own_port_behind_a_service(render) -> None:
    docs = render({})
    [container] = list(containers_of(workload(docs, "operator")))
    [service] = find(docs, "Service", "operator")

    assert {"name": "webhook", "containerPort": 8081, "protocol": "TCP"} in container["ports"]
    assert {"name": "webhook", "port": 8081, "targetPort": "webhook", "protocol": "TCP"} in service["spec"][
        "ports"
    ]
    env = env_of(container)
    assert (env["WEBHOOK_HOST"]["value"], env["WEBHOOK_PORT"]["value"]) == ("0.0.0.0", "8081")


def test_webhook_urls_default_to_the_services_in_cluster_names(render) -> None:
    docs = render({})
    operator_url = container_env(docs, "operator")["MLFLOW_WEBHOOK_URL"]["value"]
    facade_url = container_env(docs, "facade")["MLFLOW_WEBHOOK_URL"]["value"]

    assert operator_url == f"http://btc-forecast-operator.{NAMESPACE}.svc:8081/mlflow-webhook"
    assert facade_url == f"http://btc-forecast-facade.{NAMESPACE}.svc:8000/mlflow-webhook"


def test_webhook_urls_can_be_given(render) -> None:
    hooks = {
        "operator": {"url": "https://op.example/mlflow-webhook"},
        "facade": {"url": "https://f.example/h"},
    }
    docs = render({"webhooks": hooks})
    assert (
        container_env(docs, "operator")["MLFLOW_WEBHOOK_URL"]["value"] == "https://op.example/mlflow-webhook"
    )
    assert container_env(docs, "facade")["MLFLOW_WEBHOOK_URL"]["value"] == "https://f.example/h"


def test_the_signing_secret_reaches_the_operator_and_facade_as_a_file_never_as_env(render) -> None:
    docs = render({})
    [secret] = [s for s in find(docs, "Secret") if "MLFLOW_WEBHOOK_SECRET" in s["data"]]
    for component in ("operator", "facade"):
        files = secret_files(workload(docs, component))
        assert files["MLFLOW_WEBHOOK_SECRET"] == (secret["metadata"]["name"], "MLFLOW_WEBHOOK_SECRET")
        assert "MLFLOW_WEBHOOK_SECRET" not in container_env(docs, component)


def test_mlflow_may_call_private_http_peers_and_keeps_one_encryption_key(render) -> None:
    docs = render({})
    env = container_env(docs, "mlflow")
    [secret] = [s for s in find(docs, "Secret") if "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY" in s["data"]]
    key = base64.b64decode(secret["data"]["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"])

    assert (
        env["MLFLOW_WEBHOOK_ALLOWED_SCHEMES"]["value"],
        env["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"]["value"],
    ) == (
        "http,https",
        "true",
    )
    assert len(base64.urlsafe_b64decode(key)) == 32  # a Fernet key
    files = secret_files(workload(docs, "mlflow"))
    assert files["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"][1] == "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"


def test_given_webhook_secrets_are_used(render) -> None:
    key = base64.urlsafe_b64encode(bytes(range(32))).decode()
    docs = render({"secrets": {"webhookSecret": "s3cr3t", "webhookEncryptionKey": key}})
    [secret] = [s for s in find(docs, "Secret") if "MLFLOW_WEBHOOK_SECRET" in s["data"]]
    assert base64.b64decode(secret["data"]["MLFLOW_WEBHOOK_SECRET"]).decode() == "s3cr3t"
    assert base64.b64decode(secret["data"]["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"]).decode() == key


def test_only_mlflow_may_reach_the_operators_webhook_port(render) -> None:
    [rule] = [
        rule
        for policy in find(render({}), "NetworkPolicy", "operator")
        for rule in policy["spec"]["ingress"]
        if {"protocol": "TCP", "port": 8081} in rule.get("ports", [])
    ]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8081}]
    assert [peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for peer in rule["from"]] == [
        "mlflow"
    ]


def test_the_facade_does_not_register_when_its_webhook_is_off(render) -> None:
    docs = render({"webhooks": {"facade": {"enabled": False}}})
    assert "MLFLOW_WEBHOOK_URL" not in container_env(docs, "facade")
    assert "MLFLOW_WEBHOOK_SECRET" not in secret_files(workload(docs, "facade"))
    assert "MLFLOW_WEBHOOK_URL" in container_env(docs, "operator")


def test_with_webhooks_off_nothing_of_them_is_rendered(render) -> None:
    docs = render(OFF)
    [service] = find(docs, "Service", "operator")  # its metrics port stays
    assert [port["name"] for port in service["spec"]["ports"]] == ["metrics"]
    webhook_rules = [
        rule
        for policy in find(docs, "NetworkPolicy", "operator")
        for rule in policy["spec"]["ingress"]
        if {"protocol": "TCP", "port": 8081} in rule.get("ports", [])
    ]
    assert not webhook_rules
    for component in ("operator", "facade", "mlflow"):
        env = container_env(docs, component)
        assert not any(name.startswith(("MLFLOW_WEBHOOK", "WEBHOOK_")) for name in env)
        assert not any(f.startswith("MLFLOW_WEBHOOK") for f in secret_files(workload(docs, component)))
    assert not any("MLFLOW_WEBHOOK_SECRET" in s.get("data", {}) for s in find(docs, "Secret"))
