"""The predictor in-process: KServe's REST app serving a registered model, for httpx.ASGITransport.

(The root conftest imports kserve first, with pytest's arguments hidden from its argv parsing.)
"""

from __future__ import annotations

from pathlib import Path

import kserve.model_server
import pytest
from fastapi import FastAPI
from fastapi.responses import ORJSONResponse

from predictor.model import ForecastModel
from predictor.server import PredictorServer
from predictor.settings import PredictorSettings
from tests.fixtures.registry import RegisteredModel

KSERVE_NAME = "btc-lstm"


def serve_in_process(
    registered: RegisteredModel,
    state: Path,
    patch: pytest.MonkeyPatch,
    *,
    load: bool = True,
    **overrides: object,
) -> tuple[ForecastModel, FastAPI]:
    """A predictor for ``registered`` and the app serving it (loaded unless ``load`` is False)."""
    app = FastAPI(default_response_class=ORJSONResponse)
    patch.setattr(kserve.model_server, "app", app)  # KServe builds its routes on this global
    settings = PredictorSettings(
        mlflow_tracking_uri=registered.tracking_uri, model_name=registered.name, state_dir=state, **overrides
    )
    model = ForecastModel(KSERVE_NAME, settings)
    server = PredictorServer(model, http_port=0, enable_latency_logging=False)
    if load:
        model.load()
    server.asgi_app()
    return model, app
