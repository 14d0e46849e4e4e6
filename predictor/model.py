"""The KServe model: btc-lstm versions by MLflow alias, v1 and v2, live swaps and a version cache.

Inference is ``btcforecast.model.predict_quantiles`` (the one path the MLflow flavor shares); what the
answer looks like is :mod:`predictor.contract`; a version is checked by :mod:`predictor.warmup` before
it may serve.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from typing import Any

import kserve
from kserve.errors import InvalidInput, ModelNotReady
from kserve.protocol.infer_type import InferRequest, InferResponse

from btcforecast import registry
from btcforecast.model import predict_quantiles
from btcforecast.registry import LoadedModel, ResolvedVersion
from predictor import contract, validation
from predictor.metrics import get_metrics
from predictor.reload import NothingLive, ReloadResult, Serving, Swapper, reload_target
from predictor.settings import PredictorSettings
from predictor.versions import VersionCache
from predictor.warmup import check_servable, spec_of

log = logging.getLogger("kserve.predictor")
INLINE_MAX_WINDOWS = 256  # bigger batches run in a worker thread so the event loop keeps serving


class ForecastModel(kserve.Model):
    """Serves the live version; a request may name another version or alias (served from the cache)."""

    def __init__(self, name: str, settings: PredictorSettings) -> None:
        super().__init__(name)
        self.settings = settings
        self.metrics = get_metrics()
        self.load_error: str | None = None
        self._client = None
        self.swapper = Swapper(self._resolve, self._load, VersionCache(settings.version_cache_size))
        self.metrics.cache_size.labels(model=name).set_function(lambda: len(self.swapper.cache))

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
        check_servable(loaded)  # also the warm-up: refuses a version answering NaN for a valid window
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
        config, limit = serving.loaded.config, self.settings.max_windows
        spec = spec_of(config)
        windows = (
            validation.windows_from_v2(payload, spec, limit)
            if is_v2
            else validation.windows_from_v1(payload, spec, limit)
        )
        requested = (
            contract.requested_outputs(payload.request_outputs, config, payload.use_binary_outputs)
            if is_v2
            else None
        )
        if len(windows) > INLINE_MAX_WINDOWS:
            quantiles = await asyncio.to_thread(predict_quantiles, serving.loaded.model, windows)
        else:
            quantiles = predict_quantiles(serving.loaded.model, windows)
        not_finite = contract.first_non_finite(quantiles, config)
        if not_finite is not None:  # valid but extreme inputs (a close near the float32 limit)
            raise InvalidInput(f"the forecast is not a finite price for these inputs ({not_finite})")
        labels = {"model_alias": serving.alias, "model_version": serving.version}
        if not is_v2:
            return contract.v1_answer(quantiles, config, labels)
        return InferResponse(
            response_id=payload.id or str(uuid.uuid4()),
            model_name=self.name,
            model_version=serving.version,
            infer_outputs=contract.v2_outputs(quantiles, config),
            parameters={k: v for k, v in labels.items() if v is not None},
            use_binary_outputs=payload.use_binary_outputs,
            requested_outputs=requested,
        )

    def describe(self, serving: Serving | None) -> dict:
        """v2 model metadata (with ``parameters``) of ``serving``, or of nothing while none is loaded."""
        if serving is None:
            return contract.model_metadata(self.name, None)
        return contract.model_metadata(self.name, serving.loaded.config, serving.version, serving.alias)

    async def describe_version(self, version: str) -> dict:
        """Metadata of any version, loaded into the cache if needed (as a request for it would)."""
        validation.requested_version(None, version)
        return self.describe(await self._serving_for(None, version))

    def get_input_types(self) -> list[dict]:
        return contract.input_types(self.live.loaded.config if self.live else None)

    def get_output_types(self) -> list[dict]:
        return contract.output_types(self.live.loaded.config if self.live else None)
