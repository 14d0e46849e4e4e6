"""The distribution the images install carries every package of the tree."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"btcforecast": "btcforecast", "predictor": "predictor", "facade": "facade", "callback": "callback"}


def package_names_in_the_tree() -> set[str]:
    roots = {**SOURCES, "btcf_operator": "operator/btcf_operator"}
    names = set()
    for package, folder in roots.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base).parts
            names.add(".".join((package, *relative)))
    return names


def test_every_package_in_the_tree_is_listed_for_the_wheel() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    assert package_names_in_the_tree() == listed


def test_no_package_named_operator_shadows_the_standard_library() -> None:
    assert not (ROOT / "operator" / "__init__.py").exists()
