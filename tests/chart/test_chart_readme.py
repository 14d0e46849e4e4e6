"""The chart's README is generated from values.yaml and Chart.yaml, documents every key, and is current."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import ModuleType

import yaml
from chart_helpers import CHART, ROOT

GENERATOR = ROOT / "charts" / "chart_readme.py"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chart_readme", GENERATOR)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def leaves(node: object, prefix: str = "") -> set[str]:
    if isinstance(node, dict) and node:
        return {leaf for key, value in node.items() for leaf in leaves(value, f"{prefix}{key}.")}
    return {prefix.rstrip(".")}


def test_the_readme_is_what_the_generator_writes_today() -> None:
    done = subprocess.run([sys.executable, GENERATOR, "--check"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (CHART / "README.md").read_text() == generator().render()


def test_every_value_is_documented_by_itself_or_by_a_documented_parent() -> None:
    documented = {
        path for path, description in generator().documented_keys((CHART / "values.yaml").read_text())
    }
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    undocumented = {
        leaf
        for leaf in leaves(values)
        if not any(leaf == key or leaf.startswith(key + ".") for key in documented)
    }
    assert not undocumented


def test_every_description_says_something() -> None:
    rows = generator().documented_keys((CHART / "values.yaml").read_text())
    assert rows and all(len(description) > 5 for _, description in rows)


def test_a_continued_comment_belongs_to_the_key_below_it() -> None:
    text = "a:\n  # -- First line\n  # second line.\n  b: 1\n\n  # a note, not a description\n  c: 2\n"
    assert generator().documented_keys(text) == [("a.b", "First line second line.")]


def test_chart_names_its_maintainers_and_sources() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["sources"] and all(s.startswith("https://") for s in chart["sources"])
    assert chart["maintainers"] and all(m["name"] for m in chart["maintainers"])
