"""The images as written: pinned bases, multi-stage, non-root, and commands that exist.

No Docker engine runs here, so the Dockerfiles are read, not built.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "docker" / "app-base.Dockerfile"
COMPONENTS = {"predictor": 8080, "facade": 8000, "callback": 9001, "operator": 8080}


def instructions(path: Path) -> list[tuple[str, str]]:
    lines = [
        line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    return [(line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1]) for line in lines]


@pytest.mark.parametrize("path", [BASE, ROOT / "mlflow-server" / "Dockerfile"])
def test_full_images_are_multi_stage_on_a_pinned_python_and_run_as_non_root(path: Path) -> None:
    steps = instructions(path)
    assert re.search(r"PYTHON_IMAGE=python:3\.11\.\d+-slim", dict(steps)["ARG"])
    assert sum(1 for op, _ in steps if op == "FROM") == 2
    assert [arg for op, arg in steps if op == "USER"][-1] == "10001:10001"


def test_the_base_installs_cpu_torch_and_the_pinned_project() -> None:
    runs = [arg for op, arg in instructions(BASE) if op == "RUN"]
    assert any("torch==2.13.0" in r and "whl/cpu" in r for r in runs)
    assert any("-c constraints.txt" in r for r in runs)


@pytest.mark.parametrize(("component", "port"), COMPONENTS.items())
def test_component_images_extend_the_base_as_non_root_and_run_their_module(component: str, port: int) -> None:
    steps = instructions(ROOT / component / "Dockerfile")
    assert dict(steps)["FROM"] == "${BASE_IMAGE}"
    assert dict(steps)["USER"] == "10001:10001"
    assert dict(steps)["EXPOSE"] == str(port)
    command = json.loads(dict(steps)["CMD"])
    module = command[command.index("-m") + 1]
    runnable = module if "." in module else f"{module}.__main__"
    assert importlib.util.find_spec(runnable) is not None
