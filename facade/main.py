"""Assembles the facade: settings -> clients, stores and worker (lifespan) -> routes.

``create_app(settings, http_client=None)``: tests inject an ``httpx.AsyncClient`` (for instance one
whose transport fails the test if it is ever used); otherwise the lifespan creates the one client
the facade uses for the predictor and for callbacks.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from btcforecast import registry
from btcforecast.bodylimit import BodySizeLimit
from btcforecast.market import open_store
from btcforecast.mlflow_webhooks import keep_registered
from facade.api import errors
from facade.api.routes import aliases, btc_info, champion, dashboard, health, jobs, predict, reload, webhooks
from facade.api.routes import evaluation as evaluation_routes
from facade.api.routes import metrics as metrics_routes
from facade.cluster_reload import ClusterReloader
from facade.forecasts import Forecaster
from facade.http_metrics import HttpMetrics
from facade.job_steps import compute_job, deliver_job
from facade.job_store import JobStore, QueueStats
from facade.jobs import DeliveryWorker, open_job_store
from facade.metrics import FacadeMetrics
from facade.predictor_client import PredictorClient
from facade.reload import LocalReloader, Reloader
from facade.settings import FacadeSettings, get_settings
from facade.ssrf import Allowlist

log = logging.getLogger("facade")
STATIC_DIR = Path(__file__).parent / "static"


def _reloader(settings: FacadeSettings, predictor: PredictorClient) -> Reloader:
    if settings.reload_mode == "cluster":
        return ClusterReloader(settings)
    return LocalReloader(predictor)


def _queue_stats(app: FastAPI) -> QueueStats | None:
    store: JobStore | None = getattr(app.state, "jobs", None)
    return store.queue_stats() if store is not None else None


def _register_webhook(settings: FacadeSettings) -> asyncio.Task[None] | None:
    """Register the facade's MLflow webhook in the background (MLflow may not be up yet)."""
    secret = settings.webhook_secret
    if not (settings.mlflow_webhook_url and secret):
        return None
    return asyncio.create_task(
        keep_registered(
            settings.mlflow_tracking_uri,
            settings.webhook_name,
            settings.mlflow_webhook_url,
            secret,
            first_delay=5.0,
            max_delay=300.0,
        )
    )


def create_app(
    settings: FacadeSettings | None = None, http_client: httpx.AsyncClient | None = None
) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = http_client or httpx.AsyncClient(
            timeout=httpx.Timeout(settings.predictor_timeout, connect=3.0),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            trust_env=False,
            follow_redirects=False,
        )
        token = settings.reload_token.get_secret_value() if settings.reload_token else None
        predictor = PredictorClient(
            client,
            settings.predictor_url,
            settings.predictor_model,
            reload_token=token,
            timeout=settings.predictor_timeout,
        )
        allowlist = Allowlist(settings.allowlist)
        forecaster = Forecaster(
            store=open_store(settings),
            mlflow=registry.connect(settings.mlflow_tracking_uri),
            predictor=predictor,
            model_name=settings.model_name,
            champion_start=settings.champion_start,
            cache_size=settings.result_cache_size,
            alias_cache_seconds=settings.alias_cache_seconds,
        )
        job_store = open_job_store(
            settings.database,
            settings.jobs_db_path,
            settings.jobs_lease_seconds,
            startup_wait=settings.database_startup_wait,
        )
        worker = DeliveryWorker(
            job_store,
            functools.partial(compute_job, forecaster),
            functools.partial(deliver_job, settings=settings, client=client, allowlist=allowlist),
            compute_retries=settings.callback_retries,
            retry_delay=lambda n: min(
                settings.callback_backoff_max, settings.callback_backoff * 2 ** (n - 1)
            ),
            max_jobs=settings.jobs_max_claimed,
            poll_seconds=settings.jobs_poll_seconds,
        )
        app.state.predictor = predictor
        app.state.forecaster = forecaster
        app.state.allowlist = allowlist
        app.state.jobs = job_store
        app.state.worker = worker
        app.state.reloader = _reloader(settings, predictor)
        await worker.start()
        registration = _register_webhook(settings)
        try:
            yield
        finally:
            if registration is not None:
                registration.cancel()
            await worker.stop()
            await app.state.reloader.aclose()
            job_store.close()
            if http_client is None:
                await client.aclose()

    app = FastAPI(
        title="btc-forecast",
        version="0.1.0",
        description="LSTM forecasts of the next hour's BTC close, served by a KServe predictor.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = FacadeMetrics(functools.partial(_queue_stats, app))
    errors.install(app)
    for module in (health, reload, predict, champion, aliases, btc_info, jobs, dashboard, webhooks):
        app.include_router(module.router)
    app.include_router(evaluation_routes.router)  # GET /evaluation: the operator's quality gate
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(metrics_routes.router)
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.add_middleware(HttpMetrics, observe=app.state.metrics.observe_request)  # outermost: sees every answer
    return app
