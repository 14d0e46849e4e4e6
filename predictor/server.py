"""KServe's ModelServer, adjusted where the predictor needs it to behave differently.

- It starts while the model is still loading (KServe's ``start`` refuses a model that is not ready),
  so ``/v2/health/live`` answers at once and ``/v2/health/ready`` turns 200 when a version is live.
- Server readiness means the model is ready (KServe's data plane reports ready unconditionally).
- The repository's ``load`` (re)loads what the server is configured to serve (KServe's does
  nothing), ``unload`` takes the model off the endpoints and a later ``load`` brings it back.
- It binds the host it is given (KServe binds 0.0.0.0 only).
- Per-request log lines are opt-in: KServe's timing middleware (two ``kserve.trace`` lines per request,
  after matching the request's path against every route to name it) is added only with
  ``--enable_latency_logging true``, and uvicorn's access log only with ``ACCESS_LOG=true``. Together
  they were the largest part of what KServe adds to a single-window request (docs/predictor.md,
  Figures); the same latencies are in ``/metrics`` (KServe's ``request_*_seconds`` histograms).
- Every error is a problem (RFC 9457) with KServe's ``error`` member (:mod:`predictor.errors`).
"""

from __future__ import annotations

import asyncio
import logging

import kserve.model_server
import torch
from fastapi import FastAPI
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.rest.server import RESTServer
from timing_asgi import TimingMiddleware

from predictor import errors, routes
from predictor.model import ForecastModel


class PredictorDataPlane(DataPlane):
    async def ready(self) -> bool:
        models = self.model_registry.get_models()
        if not models:
            return False
        return all([await m.healthy() for m in models.values()]) and await super().ready()


class PredictorRepository(ModelRepository):
    def __init__(self) -> None:
        super().__init__()
        self._unloaded: dict[str, ForecastModel] = {}

    async def load(self, name: str) -> bool:
        model = self.models.get(name) or self._unloaded.pop(name, None)
        if not isinstance(model, ForecastModel):
            return False
        self.models[name] = model
        await model.reload()
        return model.ready

    def unload(self, name: str) -> None:
        model = self.models.get(name)
        super().unload(name)  # KeyError for an unknown name -> 404
        if isinstance(model, ForecastModel):
            self._unloaded[name] = model


class PredictorRESTServer(RESTServer):
    """KServe's REST server: its timing middleware only when ``timing_log`` (it writes log lines only),
    and the predictor's error mapping installed after KServe's own handlers."""

    def __init__(self, *args: object, timing_log: bool, access_log: bool, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.timing_log = timing_log
        if not access_log:  # what uvicorn does for access_log=False (KServe's config has it on)
            logging.getLogger("uvicorn.access").handlers = []
            logging.getLogger("uvicorn.access").propagate = False

    def _add_middlewares(self, app: FastAPI) -> None:
        super()._add_middlewares(app)
        if not self.timing_log:
            app.user_middleware[:] = [m for m in app.user_middleware if m.cls is not TimingMiddleware]

    def _add_exception_handlers(self, app: FastAPI) -> None:
        super()._add_exception_handlers(app)
        errors.install(app)


class PredictorServer(kserve.ModelServer):
    """Serves one :class:`ForecastModel`; ``run()`` blocks until SIGTERM/SIGINT."""

    def __init__(self, model: ForecastModel, *, host: str = "0.0.0.0", **kwargs: object) -> None:
        kwargs.setdefault("enable_grpc", False)
        super().__init__(registered_models=PredictorRepository(), **kwargs)  # type: ignore[arg-type]
        self.dataplane = PredictorDataPlane(model_registry=self.registered_models)
        self.model = model
        self.host = host
        self.register_model(model)
        model.enable_latency_logging = self.enable_latency_logging
        torch.set_num_threads(model.settings.torch_threads)

    def rest_server(self) -> RESTServer:
        """KServe's REST server over ``kserve.model_server.app``, with our routes added first."""
        routes.install(kserve.model_server.app, self.model, self.dataplane, self.model_repository_extension)
        rest = PredictorRESTServer(
            FASTAPI_APP_IMPORT_STRING,
            self.dataplane,
            self.model_repository_extension,
            self.http_port,
            access_log_format=self.access_log_format,
            grace_period=self.grace_period,
            event_loop=self.event_loop,
            timeout_keep_alive=self.timeout_keep_alive,
            timing_log=self.enable_latency_logging,
            access_log=self.model.settings.access_log,
        )
        rest.config.host = self.host
        return rest

    def asgi_app(self) -> FastAPI:
        """The complete REST app without serving it (for in-process clients)."""
        self.rest_server().create_application()
        return kserve.model_server.app

    def run(self) -> None:
        self.model.load_in_background()
        self._rest_server = self.rest_server()
        self.servers.append(self._rest_server.start())
        if self.enable_grpc:
            self._grpc_server = GRPCServer(
                self.grpc_port,
                self.dataplane,
                self.model_repository_extension,
                kwargs={},
                grace_period=self.grace_period,
            )
            self.servers.append(self._grpc_server.start(self.max_threads))
        self.setup_event_loop()
        self.register_signal_handler()
        asyncio.run(self._serve())
