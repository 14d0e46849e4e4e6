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
COMPONENT_DOCKERFILE = ROOT / "docker" / "component.Dockerfile"
MLFLOW = ROOT / "mlflow-server" / "Dockerfile"
IMAGES_SH = ROOT / "scripts" / "images.sh"


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


def stage(path: Path, name: str) -> list[tuple[str, str]]:
    return next(s for s in stages(path)[1:] if s[0][1].endswith(f" AS {name}"))


def final_stage(path: Path, component: str | None) -> list[tuple[str, str]]:
    """What the final image of component (None: the MLflow image) is made of, its base stages included."""
    if component is None:
        return stages(path)[-1]
    return [*stage(path, "runtime"), *stage(path, component)]


@pytest.mark.parametrize("path", [COMPONENT_DOCKERFILE, MLFLOW], ids=["components", "mlflow"])
def test_images_are_multi_stage_on_a_pinned_python(path: Path) -> None:
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", build_args(path)["PYTHON_IMAGE"])
    assert [arg for op, arg in instructions(path) if op == "FROM"][:2] in (
        ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"],
        ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"],
    )


def test_each_component_is_a_target_built_on_the_shared_runtime_stage() -> None:
    froms = [arg for op, arg in instructions(COMPONENT_DOCKERFILE) if op == "FROM"]
    assert froms[2:] == [f"runtime AS {c}" for c in COMPONENTS]
    script = IMAGES_SH.read_text()
    assert "docker/component.Dockerfile" in script and '--target "$name"' in script


@pytest.mark.parametrize(
    ("path", "component"), [*((COMPONENT_DOCKERFILE, c) for c in COMPONENTS), (MLFLOW, None)]
)
def test_build_time_pip_settings_stay_in_the_build_stage(path: Path, component: str | None) -> None:
    build = stage(path, "build")
    final = final_stage(path, component)
    assert ("COPY", ".build/pip/ /etc/btcf-pip/") in build
    assert any(op == "ENV" and "PIP_CONFIG_FILE=/etc/btcf-pip/pip.conf" in arg for op, arg in build)
    assert not any(".build" in arg or "btcf-pip" in arg or "PIP_" in arg for _, arg in final)
    assert all(arg.startswith("--from=build /opt/") for op, arg in final if op in {"COPY", "ADD"})


def test_cpu_torch_comes_from_local_wheels_or_an_index_given_as_build_argument() -> None:
    args = build_args(COMPONENT_DOCKERFILE)
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert args["TORCH_VERSION"] == '""'  # no torch unless the component's extra pins it
    build = stage(COMPONENT_DOCKERFILE, "build")
    assert ("COPY", ".build/wheels/${WHEELS}/ /wheels/") in build
    runs = [arg for op, arg in build if op == "RUN"]
    torch = next(r for r in runs if "torch" in r)
    assert '[ -z "${TORCH_VERSION}" ]' in torch
    assert "/wheels/torch-${TORCH_VERSION}+cpu" in torch
    assert '"torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"' in torch
    assert "download.pytorch.org" not in torch  # only the ARG names it


def test_only_a_component_whose_extra_pins_torch_gets_torch_and_its_wheel() -> None:
    script = IMAGES_SH.read_text()
    assert 'torch_pin="$(sed -n \'s/^torch==//p\' "$requirements")"' in script
    assert '[ -n "$torch_pin" ] && wheels=torch' in script
    assert '[ -n "$torch_pin" ] && component_args+=(--build-arg "TORCH_VERSION=$torch_pin")' in script


def test_each_image_installs_its_own_extra_in_its_own_layer_then_the_project_alone() -> None:
    build = stage(COMPONENT_DOCKERFILE, "build")
    assert ("COPY", ".build/requirements/${COMPONENT}.txt ./requirements.txt") in build
    runs = [arg for op, arg in build if op == "RUN"]
    assert any(r.startswith("pip install -c constraints.txt -r requirements.txt") for r in runs)  # own layer
    project = next(r for r in runs if "--target /opt/app ." in r)
    assert "--no-deps" in project
    assert "importlib.import_module(m)" in project and "${IMPORTS}" in project  # entry modules, extra alone


def test_the_build_context_sends_only_what_images_sh_prepares_under_dot_build() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".build/*", "!.build/wheels", "!.build/pip", "!.build/requirements"} <= set(ignore)


def test_the_mlflow_image_runs_standalone_with_its_data_folder_and_allowed_hosts_from_env() -> None:
    final = stages(MLFLOW)[-1]
    runs = " ".join(arg for op, arg in final if op == "RUN")
    assert "mkdir -p /data" in runs and "chown 10001:10001 /data" in runs
    env = " ".join(arg for op, arg in final if op == "ENV")
    assert re.search(r"MLFLOW_SERVER_ALLOWED_HOSTS=\S*mlflow", env)
    command = json.loads(dict(final)["CMD"])
    assert command[:2] == ["mlflow", "server"]
    assert "sqlite:////data/mlflow.db" in command
    assert "--allowed-hosts" not in command  # from MLFLOW_SERVER_ALLOWED_HOSTS (mlflow reads it)
    assert [arg for op, arg in final if op == "USER"][-1] == "10001:10001"


@pytest.mark.parametrize(("component", "port"), COMPONENTS.items())
def test_component_images_run_as_non_root_and_run_their_module(component: str, port: int) -> None:
    final = dict(final_stage(COMPONENT_DOCKERFILE, component))
    assert final["USER"] == "10001:10001"
    assert final["EXPOSE"] == str(port)
    command = json.loads(final["CMD"])
    module = command[command.index("-m") + 1]
    runnable = module if "." in module else f"{module}.__main__"
    assert importlib.util.find_spec(runnable) is not None
