"""The chart and the code agree: env vars, secret files, ports and commands.

Each check imports the component's settings class or module the chart names: a rename or a move in
the code fails here (it never skips), as the release would fail on a cluster.
"""

from __future__ import annotations

import importlib
import importlib.util
import tomllib
from typing import Any

import pytest
from chart_helpers import ROOT, VALUE_SETS, containers_of, find, pod_spec_of

from btcforecast.settings import CoreSettings

# component label -> settings class whose fields (upper-cased) are the env vars it reads.
SETTINGS = {
    "predictor": "predictor.settings:PredictorSettings",
    "facade": "facade.settings:FacadeSettings",
    "callback": "callback.settings:CallbackSettings",
    "operator": "btcf_operator.settings:OperatorSettings",
    "seed": "btcforecast.settings:CoreSettings",
}
# Env vars read by third-party code, not by our settings: HOME (every tool that writes a cache or
# config file; our roots are read-only, so it points at /tmp).
THIRD_PARTY_ENV = {"HOME"}
# Documented listening ports (docs/architecture.md).
PORTS = {"predictor": 8080, "facade": 8000, "callback": 9001, "mlflow": 5000}


def settings_class(component: str) -> type[CoreSettings]:
    module_name, class_name = SETTINGS[component].split(":")
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name, None)
    assert cls is not None, f"the chart runs {component} with {class_name}, which {module_name} no longer has"
    assert issubclass(cls, CoreSettings), f"{class_name} must extend CoreSettings"
    return cls


def settings_fields(component: str) -> set[str]:
    return {name.upper() for name in settings_class(component).model_fields}


def our_containers(docs) -> list[tuple[str, dict[str, Any]]]:
    """(component, container) for the containers running our own code (not MinIO, MLflow, mc)."""
    out = []
    for doc in docs:
        component = doc["metadata"]["labels"].get("app.kubernetes.io/component")
        if component not in SETTINGS:
            continue
        for c in containers_of(doc):
            if c["name"] != "wait-and-fetch":  # an inline stdlib script, not a component
                out.append((component, c))
    return out


@pytest.mark.parametrize("component", list(SETTINGS))
@pytest.mark.parametrize("name", ["defaults", "kserve-on", "external-stores", "hot-reload", "local-reload"])
def test_every_env_var_the_chart_sets_is_a_settings_field(render, name: str, component: str) -> None:
    containers = [c for comp, c in our_containers(render(VALUE_SETS[name])) if comp == component]
    assert containers, f"no {component} container rendered"
    fields = settings_fields(component)
    for c in containers:
        unknown = {e["name"] for e in c.get("env", [])} - fields - THIRD_PARTY_ENV
        assert not unknown, f"{component}: the chart sets {sorted(unknown)} but no settings field reads them"


def secret_files_of(docs, component: str) -> list[str]:
    """The file names of the `secrets` volume of the component's pods (what SECRETS_DIR holds)."""
    names = []
    for doc in docs:
        if doc["metadata"]["labels"].get("app.kubernetes.io/component") != component:
            continue
        pod = pod_spec_of(doc)
        for volume in (pod or {}).get("volumes", []):
            if volume["name"] == "secrets":
                names += [i["path"] for src in volume["projected"]["sources"] for i in src["secret"]["items"]]
    return names


@pytest.mark.parametrize("component", list(SETTINGS))
@pytest.mark.parametrize("name", ["defaults", "external-stores", "local-reload"])
def test_settings_read_every_secret_file_the_chart_mounts(
    render, name: str, component: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chart mounts secrets as files and names their directory in SECRETS_DIR: each file must
    arrive in the component's settings field of the same name, as on a cluster."""
    docs = render(VALUE_SETS[name])
    files = secret_files_of(docs, component)
    assert files, f"{component} mounts no secrets"
    for var in ("SECRETS_DIR", *files):
        monkeypatch.delenv(var, raising=False)
    for i, file in enumerate(files):
        (tmp_path / file).write_text(f"value-{i}-of-{file}\n")
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    settings = settings_class(component)()
    for i, file in enumerate(files):
        value = getattr(settings, file.lower())
        value = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        assert value == f"value-{i}-of-{file}", f"{component} does not read {file} from SECRETS_DIR"


@pytest.mark.parametrize("component", ["predictor", "facade", "callback"])
def test_container_ports_are_the_documented_ports(render, component: str) -> None:
    for name in ("defaults", "kserve-on"):
        for comp, c in our_containers(render(VALUE_SETS[name])):
            if comp == component:
                assert [p["containerPort"] for p in c["ports"]] == [PORTS[component]]


def test_mlflow_listens_on_the_documented_port(render) -> None:
    [dep] = find(render({}), "Deployment", "mlflow")
    [c] = dep["spec"]["template"]["spec"]["containers"]
    assert c["command"][c["command"].index("--port") + 1] == str(PORTS["mlflow"])
    assert c["ports"][0]["containerPort"] == PORTS["mlflow"]


def test_predictor_command_passes_the_documented_port(render) -> None:
    [dep] = find(render({}), "Deployment", "predictor")
    cmd = dep["spec"]["template"]["spec"]["containers"][0]["command"]
    assert cmd[cmd.index("--http_port") + 1] == str(PORTS["predictor"])
    assert cmd[cmd.index("--model_name") + 1] == "btc-lstm"


@pytest.mark.parametrize("component", ["facade", "callback"])
def test_web_components_listen_on_every_interface_at_their_container_port(render, component: str) -> None:
    """Their own default host is 127.0.0.1 (right for `make up`, unreachable in a pod)."""
    [dep] = find(render({}), "Deployment", component)
    [c] = dep["spec"]["template"]["spec"]["containers"]
    cmd = c["command"]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--port") + 1] == str(c["ports"][0]["containerPort"]) == str(PORTS[component])


def modules_run(docs) -> set[str]:
    mods = set()
    for _, c in our_containers(docs):
        cmd = c.get("command", [])
        if cmd[:2] == ["python", "-m"]:
            mods.add(cmd[2])
        if cmd[:2] == ["kopf", "run"]:
            mods.add(cmd[cmd.index("-m") + 1])
    return mods


@pytest.mark.parametrize(
    ("module", "component"),
    [
        ("predictor", "predictor"),
        ("facade", "facade"),
        ("callback", "callback"),
        ("btcf_operator.main", "operator"),
    ],
)
def test_every_module_the_chart_runs_exists(render, module: str, component: str) -> None:
    assert module in modules_run(render(VALUE_SETS["all-namespaces"]))
    settings_class(component)
    runnable = module if "." in module else f"{module}.__main__"
    assert importlib.util.find_spec(runnable) is not None, f"the chart runs {runnable}, which does not exist"


def test_btcf_console_script_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["btcf"].startswith("btcforecast.")
