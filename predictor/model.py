"""The KServe model: btc-lstm versions by MLflow alias, v1 and v2, live swaps and a version cache."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from typing import Any

import kserve
import numpy as np
import torch
from kserve.errors import ModelNotReady
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from btcforecast import registry
from btcforecast.registry import LoadedModel, ResolvedVersion
from predictor import validation
from predictor.metrics import get_metrics
from predictor.reload import NothingLive, ReloadResult, Serving, Swapper, reload_target
from predictor.settings import PredictorSettings
from predictor.versions import VersionCache

log = logging.getLogger("kserve.predictor")
INLINE_MAX_WINDOWS = 256  # bigger batches run in a worker thread so the event loop keeps serving


def forward(model: torch.nn.Module, windows: np.ndarray) -> np.ndarray:
    """Raw windows [N, T, F] -> close [N] as float32, without autograd bookkeeping."""
    if not windows.flags.writeable:
        windows = windows.copy()
    with torch.inference_mode():
        return model(torch.from_numpy(windows)).numpy().astype(np.float32, copy=False)


def spec_of(serving: Serving) -> validation.WindowSpec:
    config = serving.loaded.config
    return validation.WindowSpec(window=config.window, feature_names=tuple(config.feature_names))


class ForecastModel(kserve.Model):
    """Serves the live version; a request may name another version or alias (served from the cache)."""

    def __init__(self, name: str, settings: PredictorSettings) -> None:
        super().__init__(name)
        self.settings = settings
        self.metrics = get_metrics()
        self.load_error: str | None = None
        self._client = None
        self.swapper = Swapper(self._resolve, self._load, VersionCache(settings.version_cache_size))

    # --- loading -------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = registry.connect(self.settings.mlflow_tracking_uri)
        return self._client

    def _resolve(self, alias: str | None, version: str | None) -> ResolvedVersion:
        return registry.resolve(self.client, self.settings.model_name, alias=alias, version=version)

    def _load(self, ref: ResolvedVersion) -> LoadedModel:
        loaded = registry.load_version(self.client, ref, self.settings.model_cache_dir)
        forward(
            loaded.model, np.ones((1, loaded.config.window, loaded.config.n_features), np.float32)
        )  # warm-up
        log.info("loaded %s version %s", ref.name, ref.version)
        return loaded

    def load(self) -> bool:
        """Resolve the configured alias (or pinned version) once, load it, go ready. Raises on failure."""
        alias, version = reload_target(
            None, None, None, self.settings.model_alias, self.settings.model_version
        )
        serving = self.swapper.load_initial(alias, version)
        self._mark_live(serving)
        self.load_error = None
        self.ready = True
        return self.ready

    def load_in_background(self) -> threading.Thread:
        """Retry :meth:`load` with backoff in a thread, so the server answers liveness meanwhile."""
        thread = threading.Thread(target=self._load_with_retries, name="model-loader", daemon=True)
        thread.start()
        return thread

    def _load_with_retries(self) -> None:
        delay, attempt = self.settings.load_retry_initial, 0
        while not self.ready:
            attempt += 1
            try:
                self.load()
            except Exception as e:  # MLflow/S3 down, alias missing, bad files: all retried
                self.load_error = f"{type(e).__name__}: {e}"
                log.warning(
                    "model not loaded (attempt %d), retrying in %.1f s: %s", attempt, delay, self.load_error
                )
                if self.settings.load_retry_attempts and attempt >= self.settings.load_retry_attempts:
                    log.error("giving up loading the model after %d attempts", attempt)
                    return
                time.sleep(delay)
                delay = min(delay * 2, self.settings.load_retry_max)

    def _mark_live(self, serving: Serving) -> None:
        self.metrics.set_live(self.name, serving.version)
        self.metrics.cache_size.labels(model=self.name).set(len(self.swapper.cache))

    @property
    def live(self) -> Serving | None:
        return self.swapper.live

    async def reload(self, alias: str | None = None, version: str | None = None) -> ReloadResult:
        """Make (alias, version) live; a bare reload re-resolves the alias being served."""
        alias, version = reload_target(
            alias, version, self.live, self.settings.model_alias, self.settings.model_version
        )
        try:
            result = await self.swapper.reload(alias, version)
        except Exception as e:
            self.metrics.reload_failures.labels(model=self.name, reason=type(e).__name__).inc()
            raise
        self.metrics.reloads.labels(model=self.name).inc()
        self._mark_live(result.current)
        self.load_error = None
        self.ready = True
        return result

    # --- inference -----------------------------------------------------------------------------
    async def _serving_for(self, alias: str | None, version: str | None) -> Serving:
        try:
            serving = await self.swapper.select(alias, version)
        except NothingLive as e:
            raise ModelNotReady(self.name, str(e)) from e
        self.metrics.cache_size.labels(model=self.name).set(len(self.swapper.cache))
        return serving

    async def predict(
        self, payload: dict | InferRequest, headers: dict[str, str] | None = None
    ) -> dict | InferResponse:
        is_v2 = isinstance(payload, InferRequest)
        params = (
            payload.parameters
            if is_v2
            else (payload.get("parameters") if isinstance(payload, dict) else None)
        )
        alias, version = validation.requested_version(params, payload.model_version if is_v2 else None)
        serving = await self._serving_for(alias, version)  # one reference for the whole request
        spec, limit = spec_of(serving), self.settings.max_windows
        windows = (
            validation.windows_from_v2(payload, spec, limit)
            if is_v2
            else validation.windows_from_v1(payload, spec, limit)
        )
        if len(windows) > INLINE_MAX_WINDOWS:
            close = await asyncio.to_thread(forward, serving.loaded.model, windows)
        else:
            close = forward(serving.loaded.model, windows)
        labels = {"model_alias": serving.alias, "model_version": serving.version}
        if not is_v2:
            return {"predictions": close.tolist(), **labels}
        output = InferOutput(
            name=validation.OUTPUT_NAME, shape=list(close.shape), datatype=validation.DATATYPE, data=close
        )
        return InferResponse(
            response_id=payload.id or str(uuid.uuid4()),
            model_name=self.name,
            model_version=serving.version,
            infer_outputs=[output],
            parameters={k: v for k, v in labels.items() if v is not None},
            use_binary_outputs=payload.use_binary_outputs,
            requested_outputs=payload.request_outputs,
        )

    def get_input_types(self) -> list[dict]:
        live = self.live
        window, features = (live.loaded.config.window, live.loaded.config.n_features) if live else (-1, -1)
        return [
            {"name": validation.INPUT_NAME, "datatype": validation.DATATYPE, "shape": [-1, window, features]}
        ]

    def get_output_types(self) -> list[dict]:
        return [{"name": validation.OUTPUT_NAME, "datatype": validation.DATATYPE, "shape": [-1]}]
