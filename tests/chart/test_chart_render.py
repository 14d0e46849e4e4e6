"""The chart renders and lints for every supported values set, and each switch does what it says."""

from __future__ import annotations

import pytest
import yaml
from chart_helpers import CHART, VALUE_SETS, containers_of, find, helm, pod_spec_of


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def secret_files(workload: dict) -> dict[str, tuple[str, str]]:
    """file name -> (Secret, key) of the pod's `secrets` volume: where its containers read secrets."""
    [volume] = [v for v in pod_spec_of(workload)["volumes"] if v["name"] == "secrets"]
    return {
        item["path"]: (source["secret"]["name"], item["key"])
        for source in volume["projected"]["sources"]
        for item in source["secret"]["items"]
    }


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_chart_lints_strictly(name: str) -> None:
    report = helm.lint(CHART, VALUE_SETS[name], strict=True, namespace="btc-forecast")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, report


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_every_object_carries_a_component_label(render, name: str) -> None:
    for doc in render(VALUE_SETS[name]):
        labels = doc["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/component"), f"{doc['kind']}/{doc['metadata']['name']}"
        assert labels.get("app.kubernetes.io/instance") == "btc-forecast"


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_every_container_has_requests_and_limits(render, name: str) -> None:
    for doc in render(VALUE_SETS[name]):
        for c in containers_of(doc):
            assert c.get("resources", {}).get("requests"), f"{doc['metadata']['name']}/{c['name']}"
            assert c["resources"].get("limits"), f"{doc['metadata']['name']}/{c['name']}"


def test_kserve_enabled_renders_an_inferenceservice_instead_of_a_deployment(render) -> None:
    docs = render(VALUE_SETS["kserve-on"])
    [isvc] = find(docs, "InferenceService")
    assert isvc["metadata"]["name"] == "btc-lstm"
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert not find(docs, "Deployment", "predictor")
    [container] = isvc["spec"]["predictor"]["containers"]
    assert container["ports"][0]["containerPort"] == 8080


def test_kserve_disabled_renders_a_predictor_deployment_and_service(render) -> None:
    docs = render(VALUE_SETS["kserve-off"])
    assert not find(docs, "InferenceService")
    assert len(find(docs, "Deployment", "predictor")) == 1
    assert len(find(docs, "Service", "predictor")) == 1


def test_predictor_probes_use_kserve_health_routes(render) -> None:
    [dep] = find(render({}), "Deployment", "predictor")
    [c] = dep["spec"]["template"]["spec"]["containers"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"


def test_facade_calls_the_kserve_predictor_service_when_kserve_is_on(render) -> None:
    [dep] = find(render(VALUE_SETS["kserve-on"]), "Deployment", "facade")
    env = env_of(dep["spec"]["template"]["spec"]["containers"][0])
    assert env["PREDICTOR_URL"]["value"] == "http://btc-lstm-predictor.btc-forecast.svc.cluster.local"


def test_default_modelalias_targets_the_predictor_deployment(render) -> None:
    [ma] = find(render({}), "ModelAlias")
    assert ma["spec"]["target"] == {"kind": "Deployment", "name": "btc-forecast-predictor"}
    assert ma["spec"]["alias"] == "production"
    assert ma["spec"]["strategy"] == "Rollout"


def test_default_modelalias_targets_the_inferenceservice_when_kserve_is_on(render) -> None:
    [ma] = find(render(VALUE_SETS["kserve-on"]), "ModelAlias")
    assert ma["spec"]["target"] == {"kind": "InferenceService", "name": "btc-lstm"}


def test_hot_reload_modelalias_names_the_reload_token_secret(render) -> None:
    [ma] = find(render(VALUE_SETS["hot-reload"]), "ModelAlias")
    assert ma["spec"]["strategy"] == "HotReload"
    assert ma["spec"]["reloadTokenSecret"] == {"name": "btc-forecast-secrets", "key": "RELOAD_TOKEN"}


def test_ingress_routes_root_to_facade_and_callback_to_receiver(render) -> None:
    ingresses = find(render({}), "Ingress")
    backends = {
        p["path"]: p["backend"]["service"]["name"]
        for ing in ingresses
        for rule in ing["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    assert backends["/"] == "btc-forecast-facade"
    assert backends["/callback(/|$)(.*)"] == "btc-forecast-callback"
    assert {i["spec"]["ingressClassName"] for i in ingresses} == {"nginx"}


def test_ingress_disabled_renders_no_ingress(render) -> None:
    assert not find(render(VALUE_SETS["ingress-off"]), "Ingress")


def test_external_object_store_deploys_no_minio(render) -> None:
    docs = render(VALUE_SETS["external-stores"])
    assert not [d for d in docs if d["metadata"]["name"].startswith("btc-forecast-minio")]
    [dep] = find(docs, "Deployment", "facade")
    env = env_of(dep["spec"]["template"]["spec"]["containers"][0])
    assert env["S3_ENDPOINT_URL"]["value"] == "https://s3.example.com"
    assert secret_files(dep)["AWS_ACCESS_KEY_ID"] == ("my-s3", "AWS_ACCESS_KEY_ID")


def test_external_mlflow_database_replaces_sqlite_and_its_volume(render) -> None:
    docs = render(VALUE_SETS["external-stores"])
    [dep] = find(docs, "Deployment", "mlflow")
    [c] = dep["spec"]["template"]["spec"]["containers"]
    assert "sqlite:////data/mlflow.db" not in c["command"]
    assert secret_files(dep)["MLFLOW_BACKEND_STORE_URI"] == ("mlflow-db", "url")
    assert "MLFLOW_BACKEND_STORE_URI" not in env_of(c)
    assert not find(docs, "PersistentVolumeClaim", "mlflow")


def test_mlflow_serves_artifacts_from_the_bucket_with_allowed_hosts(render) -> None:
    [dep] = find(render({}), "Deployment", "mlflow")
    [c] = dep["spec"]["template"]["spec"]["containers"]
    # python -c files/exec_with_secrets.py puts the mounted keys into MLflow's environment, then execs it.
    cmd = c["command"]
    assert cmd[:2] == ["python", "-c"]
    assert cmd[3:5] == ["mlflow", "server"]
    assert cmd[cmd.index("--artifacts-destination") + 1] == "s3://mlflow/"
    assert "--serve-artifacts" in cmd
    hosts = cmd[cmd.index("--allowed-hosts") + 1].split(",")
    assert "btc-forecast-mlflow:*" in hosts
    assert "btc-forecast-mlflow.btc-forecast.svc.cluster.local:*" in hosts
    env = env_of(c)
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"]["value"] == "false"
    assert env["MLFLOW_DISABLE_TELEMETRY"]["value"] == "true"


def test_generated_secret_holds_the_three_tokens_and_the_webhook_keys(render) -> None:
    [secret] = [d for d in find(render({}), "Secret") if d["metadata"]["name"] == "btc-forecast-secrets"]
    assert set(secret["data"]) == {
        "API_TOKEN",
        "RELOAD_TOKEN",
        "CALLBACK_SECRET",
        "MLFLOW_WEBHOOK_SECRET",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY",
    }


def test_existing_secret_suppresses_the_generated_one(render) -> None:
    docs = render({"secrets": {"existingSecret": "mine"}})
    assert not [d for d in find(docs, "Secret") if d["metadata"]["name"] == "btc-forecast-secrets"]
    [dep] = find(docs, "Deployment", "facade")
    assert secret_files(dep)["API_TOKEN"] == ("mine", "API_TOKEN")


def test_seed_and_bucket_jobs_are_release_objects_not_hooks(render) -> None:
    """Hooks run only after `helm install --wait` has seen every workload ready, but the predictor
    turns ready only once the seed has set `production`: as hooks they would deadlock --wait."""
    docs = render({})
    for component in ("seed", "buckets"):
        [job] = find(docs, "Job", component)
        assert "helm.sh/hook" not in job["metadata"].get("annotations", {}), component
    [seed] = find(docs, "Job", "seed")
    [c] = seed["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["btcf", "seed", "--online"]


def test_each_revision_runs_its_own_seed_and_bucket_jobs() -> None:
    """A Job's pod template is immutable: a new name per revision lets `helm upgrade` change it."""
    with helm.Chart.load(CHART) as chart:
        files = chart.render(
            values={}, name="btc-forecast", namespace="btc-forecast", revision=7, is_upgrade=True
        )
    names = {
        d["metadata"]["name"]
        for path, text in files.items()
        if not path.endswith("NOTES.txt")
        for d in yaml.safe_load_all(text)
        if d and d["kind"] == "Job" and "helm.sh/hook" not in d["metadata"].get("annotations", {})
    }
    assert names == {"btc-forecast-seed-7", "btc-forecast-buckets-7"}


def test_seed_waits_for_mlflow_and_the_model_bucket_before_training(render) -> None:
    [seed] = find(render({}), "Job", "seed")
    [init] = seed["spec"]["template"]["spec"]["initContainers"]
    env = env_of(init)
    assert init["command"][:2] == ["python", "-c"]
    assert env["MLFLOW_TRACKING_URI"]["value"] == "http://btc-forecast-mlflow:5000"
    assert env["MLFLOW_BUCKET"]["value"] == "mlflow"
    assert env["S3_ENDPOINT_URL"]["value"] == "http://btc-forecast-minio:9000"
    assert "CSV_URL" not in env


def test_seed_fetches_a_csv_url_with_the_images_python_past_the_configmap_limit(render) -> None:
    url = "http://data.example/btc_usd_1h.csv"
    docs = render({"seed": {"data": {"csvUrl": url, "csvSha256": "ab" * 32}}})
    assert not find(docs, "ConfigMap", "seed")
    [seed] = find(docs, "Job", "seed")
    pod = seed["spec"]["template"]["spec"]
    [init] = pod["initContainers"]
    assert env_of(init)["CSV_URL"]["value"] == url
    assert env_of(init)["CSV_SHA256"]["value"] == "ab" * 32
    [c] = pod["containers"]
    assert env_of(c)["BTC_DATA_CSV"]["value"] == env_of(init)["CSV_PATH"]["value"] == "/data/btc.csv"
    assert init["image"] == c["image"] == "btc-forecast/predictor:0.1.0"


def test_bucket_job_uses_the_app_image_not_an_object_store_image(render) -> None:
    """So an external store (no MinIO image at all) can have its buckets created too."""
    values = {
        "objectStore": {
            "mode": "external",
            "external": {"endpoint": "http://s3.local:8333", "existingSecret": "s3", "createBuckets": True},
        }
    }
    [job] = find(render(values), "Job", "buckets")
    [c] = job["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "btc-forecast/predictor:0.1.0"
    assert env_of(c)["BUCKETS"]["value"] == "mlflow market-data"
    assert env_of(c)["S3_ENDPOINT_URL"]["value"] == "http://s3.local:8333"


def test_no_bucket_job_for_an_external_store_by_default(render) -> None:
    assert not find(render(VALUE_SETS["external-stores"]), "Job", "buckets")


def test_seed_job_generates_labelled_synthetic_data_when_offline(render) -> None:
    [seed] = find(render({"seed": {"data": {"online": False}}}), "Job", "seed")
    [c] = seed["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["btcf", "seed", "--offline"]


def test_seed_csv_from_configmap_is_mounted_and_named_in_btc_data_csv(render) -> None:
    docs = render({"seed": {"data": {"csv": "timestamps,open,high,low,close,volume\n"}}})
    [cm] = find(docs, "ConfigMap", "seed")
    [seed] = find(docs, "Job", "seed")
    [c] = seed["spec"]["template"]["spec"]["containers"]
    assert env_of(c)["BTC_DATA_CSV"]["value"] == "/csv/btc_usd_1h.csv"
    assert "btc_usd_1h.csv" in cm["data"]


def test_helm_test_pod_checks_facade_health(render) -> None:
    [pod] = find(render({}), "Pod", "test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert "btc-forecast-facade:8000/health" in pod["spec"]["containers"][0]["command"][-1]


def test_network_policies_open_each_serving_component_to_its_callers(render) -> None:
    policies = find(render({"metrics": {"scrapers": []}}), "NetworkPolicy")  # scrapes: test_chart_metrics.py
    opened = {
        p["metadata"]["labels"]["app.kubernetes.io/component"] for p in policies if p["spec"]["ingress"]
    }
    assert opened == {"facade", "callback", "mlflow", "minio", "predictor", "operator"}


def test_every_pod_of_the_release_is_closed_to_ingress_by_default(render) -> None:
    """Jobs and the test pod accept no connections; the others only what is opened."""
    docs = render({})
    [deny] = [p for p in find(docs, "NetworkPolicy") if not p["spec"]["ingress"]]
    assert deny["spec"]["policyTypes"] == ["Ingress"]
    selector = deny["spec"]["podSelector"]["matchLabels"]
    for doc in docs:
        pod = pod_spec_of(doc)
        if pod is None or doc["kind"] == "InferenceService":
            continue
        metadata = doc["metadata"] if doc["kind"] == "Pod" else doc["spec"]["template"]["metadata"]
        labels = metadata["labels"]
        assert selector.items() <= labels.items(), doc["metadata"]["name"]


def test_operator_is_namespace_scoped_by_default(render) -> None:
    [dep] = find(render({}), "Deployment", "operator")
    cmd = dep["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--namespace=btc-forecast" in cmd and "--all-namespaces" not in cmd
    assert {r["kind"] for r in find(render({}), "Role", "operator")} == {"Role"}


def test_operator_watch_all_namespaces_uses_a_clusterrole(render) -> None:
    docs = render(VALUE_SETS["all-namespaces"])
    [dep] = find(docs, "Deployment", "operator")
    assert "--all-namespaces" in dep["spec"]["template"]["spec"]["containers"][0]["command"]
    assert not find(docs, "Role", "operator")


def _facade_env(docs) -> dict[str, dict]:
    [dep] = find(docs, "Deployment", "facade")
    return env_of(dep["spec"]["template"]["spec"]["containers"][0])


def test_facade_in_cluster_mode_patches_the_modelalias_and_needs_no_reload_token(render) -> None:
    env = _facade_env(render({}))
    assert env["RELOAD_MODE"]["value"] == "cluster"
    assert env["MODELALIAS_NAME"]["value"] == "btc-lstm-production"
    assert env["MODELALIAS_NAMESPACE"]["value"] == "btc-forecast"
    assert env["CLUSTER_RELOAD_TIMEOUT"]["value"] == "120"
    [dep] = find(render({}), "Deployment", "facade")
    assert "RELOAD_TOKEN" not in env and "RELOAD_TOKEN" not in secret_files(dep)


def test_facade_in_local_mode_reads_the_reload_token_from_the_secret(render) -> None:
    [dep] = find(render(VALUE_SETS["local-reload"]), "Deployment", "facade")
    assert secret_files(dep)["RELOAD_TOKEN"] == ("btc-forecast-secrets", "RELOAD_TOKEN")


def test_callbacks_may_go_to_the_bundled_receiver_by_service_name_and_fqdn(render) -> None:
    hosts = _facade_env(render({}))["CALLBACK_ALLOWLIST"]["value"].split(",")
    assert {"btc-forecast-callback", "btc-forecast-callback.btc-forecast.svc.cluster.local"} <= set(hosts)


def test_the_facade_ingress_waits_longer_than_a_cluster_reload(render) -> None:
    [ingress] = find(render({}), "Ingress", "facade")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "150"
    mine = {"ingress": {"annotations": {"nginx.ingress.kubernetes.io/proxy-read-timeout": "600"}}}
    [ingress] = find(render(mine), "Ingress", "facade")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "600"


def _operator_secret_names(docs) -> list[str]:
    return [
        name
        for role in find(docs, "Role", "operator")
        for rule in role["rules"]
        if "secrets" in rule["resources"]
        for name in rule["resourceNames"]
    ]


def test_operator_reads_only_the_charts_secret_by_default(render) -> None:
    assert _operator_secret_names(render({})) == ["btc-forecast-secrets"]


def test_operator_read_secrets_adds_names_and_keeps_the_charts_own(render) -> None:
    docs = render({"operator": {"readSecrets": ["team-a-reload", "btc-forecast-secrets"]}})
    assert sorted(_operator_secret_names(docs)) == ["btc-forecast-secrets", "team-a-reload"]


def test_operator_memory_request_covers_what_it_uses_when_idle(render) -> None:
    """Measured on a real node: the operator idles at about 270 MiB (the old limit was 384 MiB)."""
    [dep] = find(render({}), "Deployment", "operator")
    resources = dep["spec"]["template"]["spec"]["containers"][0]["resources"]
    mib = {"Mi": 1, "Gi": 1024}
    size = lambda q: int(q[:-2]) * mib[q[-2:]]  # noqa: E731
    assert size(resources["requests"]["memory"]) >= 300
    assert size(resources["limits"]["memory"]) >= 2 * 270


def test_volume_claims_are_kept_when_the_release_is_uninstalled(render) -> None:
    claims = find(render({}), "PersistentVolumeClaim")
    assert {c["metadata"]["labels"]["app.kubernetes.io/component"] for c in claims} == {
        "minio",
        "mlflow",
        "facade",
        "callback",
    }
    for claim in claims:
        assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    for claim in find(render({"global": {"keepVolumesOnUninstall": False}}), "PersistentVolumeClaim"):
        assert "helm.sh/resource-policy" not in claim["metadata"].get("annotations", {})
