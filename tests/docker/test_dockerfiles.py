"""The images as written: pinned bases, multi-stage, non-root, and commands that exist.

These read the Dockerfiles (fast, no engine); tests/containers builds and runs them.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = {"predictor": 8080, "facade": 8000, "callback": 9001, "operator": 8080}
PREDICTOR = ROOT / "predictor" / "Dockerfile"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs; backslash continuations joined, comments left out."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1]) for line in lines]


def build_args(path: Path) -> dict[str, str]:
    return dict(arg.partition("=")[::2] for op, arg in instructions(path) if op == "ARG")


def stages(path: Path) -> list[list[tuple[str, str]]]:
    """Instructions per stage (the first list holds the ARGs before the first FROM)."""
    out: list[list[tuple[str, str]]] = [[]]
    for op, arg in instructions(path):
        if op == "FROM":
            out.append([])
        out[-1].append((op, arg))
    return out


FULL_IMAGES = [*(ROOT / c / "Dockerfile" for c in COMPONENTS), ROOT / "mlflow-server" / "Dockerfile"]


@pytest.mark.parametrize("path", FULL_IMAGES)
def test_full_images_are_multi_stage_on_a_pinned_python_and_run_as_non_root(path: Path) -> None:
    steps = instructions(path)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", build_args(path)["PYTHON_IMAGE"])
    assert [arg for op, arg in steps if op == "FROM"] == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    assert [arg for op, arg in steps if op == "USER"][-1] == "10001:10001"


@pytest.mark.parametrize("path", FULL_IMAGES)
def test_build_time_pip_settings_stay_in_the_build_stage(path: Path) -> None:
    _, build, final = stages(path)
    assert ("COPY", ".build/pip/ /etc/btcf-pip/") in build
    assert any(op == "ENV" and "PIP_CONFIG_FILE=/etc/btcf-pip/pip.conf" in arg for op, arg in build)
    assert not any(".build" in arg or "btcf-pip" in arg or "PIP_" in arg for _, arg in final)
    assert all(arg.startswith("--from=build /opt/") for op, arg in final if op in {"COPY", "ADD"})


def test_the_predictor_installs_cpu_torch_from_local_wheels_or_an_index_given_as_build_argument() -> None:
    args = build_args(PREDICTOR)
    assert args["TORCH_VERSION"] == "2.13.0"
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    _, build, _ = stages(PREDICTOR)
    assert ("COPY", ".build/wheels/ /wheels/") in build
    runs = [arg for op, arg in build if op == "RUN"]
    torch = next(r for r in runs if "torch" in r)
    assert "/wheels/torch-${TORCH_VERSION}+cpu" in torch
    assert '"torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"' in torch
    assert "download.pytorch.org" not in torch  # only the ARG names it


@pytest.mark.parametrize("component", [c for c in COMPONENTS if c != "predictor"])
def test_only_the_predictor_image_gets_torch(component: str) -> None:
    text = " ".join(arg for _, arg in instructions(ROOT / component / "Dockerfile"))  # comments left out
    assert "torch" not in text.lower()
    assert ".build/wheels" not in text


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_image_installs_its_own_extra_in_its_own_layer_then_the_project_alone(component: str) -> None:
    _, build, _ = stages(ROOT / component / "Dockerfile")
    assert ("COPY", f".build/requirements/{component}.txt ./requirements.txt") in build
    runs = [arg for op, arg in build if op == "RUN"]
    assert any(r.startswith("pip install -c constraints.txt -r requirements.txt") for r in runs)  # own layer
    project = next(r for r in runs if "--target /opt/app ." in r)
    assert "--no-deps" in project
    assert 'python -c "import ' in project  # the entry modules import with the extra alone


def test_the_build_context_sends_only_what_images_sh_prepares_under_dot_build() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".build/*", "!.build/wheels", "!.build/pip", "!.build/requirements"} <= set(ignore)


def test_the_mlflow_image_runs_standalone_with_its_data_folder_and_allowed_hosts_from_env() -> None:
    path = ROOT / "mlflow-server" / "Dockerfile"
    _, _, final = stages(path)
    runs = " ".join(arg for op, arg in final if op == "RUN")
    assert "mkdir -p /data" in runs and "chown 10001:10001 /data" in runs
    env = " ".join(arg for op, arg in final if op == "ENV")
    assert re.search(r"MLFLOW_SERVER_ALLOWED_HOSTS=\S*mlflow", env)
    command = json.loads(dict(final)["CMD"])
    assert command[:2] == ["mlflow", "server"]
    assert "sqlite:////data/mlflow.db" in command
    assert "--allowed-hosts" not in command  # from MLFLOW_SERVER_ALLOWED_HOSTS (mlflow reads it)


@pytest.mark.parametrize(("component", "port"), COMPONENTS.items())
def test_component_images_run_as_non_root_and_run_their_module(component: str, port: int) -> None:
    _, _, final = stages(ROOT / component / "Dockerfile")
    assert dict(final)["USER"] == "10001:10001"
    assert dict(final)["EXPOSE"] == str(port)
    command = json.loads(dict(final)["CMD"])
    module = command[command.index("-m") + 1]
    runnable = module if "." in module else f"{module}.__main__"
    assert importlib.util.find_spec(runnable) is not None
