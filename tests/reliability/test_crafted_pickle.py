"""A registered version whose weights file is a crafted pickle is refused without being executed.

The version is registered in the real MLflow with a valid config.json and, as
``weights.safetensors``, a pickle that would create a marker file if anything unpickled it. The
predictor's reload to it is refused (422, naming the file) and the old version keeps serving; the
facade's /predict for an alias pointing at it fails cleanly (no 500); the marker never appears.
"""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator, Callable
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import pytest
import pytest_asyncio

import btcforecast.model as model_module
from btcforecast import registry
from btcforecast.model import WEIGHTS_FILE
from btcforecast.training import TrainedModel
from facade.main import create_app as create_facade
from tests.fixtures.registry import RegisteredModel
from tests.predictor.conftest import v2_body
from tests.reliability.conftest import (
    RELOAD_TOKEN,
    InProcessPredictor,
    facade_settings,
    in_process_predictor,
)

CRAFTED_ALIAS = "crafted"
AUTH = {"Authorization": f"Bearer {RELOAD_TOKEN}"}


class _CreatesMarker:
    """Unpickling this calls open(marker, "w"): the file appearing means code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pickle-marker") / "unpickled"


@pytest.fixture(scope="module")
def crafted(
    register_models: Callable[..., RegisteredModel],
    trained_models: dict[date, TrainedModel],
    marker: Path,
) -> tuple[RegisteredModel, str]:
    """A fresh registration plus version ``crafted``: valid config, pickle as the weights."""
    model = register_models()
    payload = pickle.dumps(_CreatesMarker(marker))
    real_save = model_module.save_model

    def save_with_pickle(module, config, directory: Path) -> None:
        real_save(module, config, directory)
        (Path(directory) / WEIGHTS_FILE).write_bytes(payload)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(model_module, "save_model", save_with_pickle)
        client = registry.connect(model.tracking_uri)
        version = registry.register(
            client, model.name, trained_models[date(2025, 3, 27)], alias=CRAFTED_ALIAS
        )
    assert not marker.exists()
    return model, version


@pytest_asyncio.fixture
async def served(crafted: tuple[RegisteredModel, str], tmp_path: Path) -> AsyncIterator[InProcessPredictor]:
    async with in_process_predictor(crafted[0], tmp_path / "predictor", reload_token=RELOAD_TOKEN) as p:
        yield p


async def test_reloading_to_a_pickled_weights_file_is_refused_and_the_old_version_keeps_serving(
    crafted: tuple[RegisteredModel, str], served: InProcessPredictor, windows: np.ndarray, marker: Path
) -> None:
    model, version = crafted
    before = served.model.live.version

    refused = await served.client.post(
        "/v2/models/btc-lstm/reload", params={"version": version}, headers=AUTH
    )
    by_alias = await served.client.post(
        "/v2/models/btc-lstm/reload", params={"alias": CRAFTED_ALIAS}, headers=AUTH
    )

    assert refused.status_code == 422 and "safetensors" in refused.json()["error"]
    assert by_alias.status_code == 422
    assert not marker.exists()
    assert served.model.live.version == before == model.version_of("production")
    answer = await served.client.post("/v2/models/btc-lstm/infer", json=v2_body(windows))
    assert answer.status_code == 200 and answer.json()["model_version"] == before


async def test_asking_for_the_pickled_version_in_a_request_is_refused_without_unpickling(
    crafted: tuple[RegisteredModel, str], served: InProcessPredictor, windows: np.ndarray, marker: Path
) -> None:
    _, version = crafted
    response = await served.client.post(
        f"/v2/models/btc-lstm/versions/{version}/infer", json=v2_body(windows)
    )
    assert response.status_code == 422 and "safetensors" in response.json()["error"]
    assert not marker.exists()


async def test_the_facade_fails_cleanly_for_an_alias_pointing_at_the_pickled_version(
    crafted: tuple[RegisteredModel, str],
    served: InProcessPredictor,
    market_uri: str,
    marker: Path,
    tmp_path: Path,
) -> None:
    model, _ = crafted
    to_predictor = httpx.AsyncClient(transport=httpx.ASGITransport(app=served.app), timeout=30.0)
    settings = facade_settings(tmp_path / "facade", model, market_uri, "http://127.0.0.1:8080")
    app = create_facade(settings, http_client=to_predictor)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://facade") as api,
    ):
        body = {"alias": CRAFTED_ALIAS, "start": "2025-04-10", "end": "2025-04-10"}
        response = await api.post("/predict", json=body)
        good = await api.post("/predict", json={**body, "alias": "20250327"})
    await to_predictor.aclose()

    assert response.status_code == 502, (
        response.text
    )  # the registry holds a broken version: not the client's fault
    assert "safetensors" in response.json()["detail"]
    assert good.status_code == 200
    assert not marker.exists()
