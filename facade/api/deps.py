"""Request-scoped access to what the lifespan built, as ``Annotated`` dependency aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from btcforecast.http_edge import check_bearer
from facade.forecasts import Forecaster
from facade.jobs import DeliveryWorker, JobStore
from facade.predictor_client import PredictorClient
from facade.reload import Reloader
from facade.settings import FacadeSettings
from facade.ssrf import Allowlist


def _settings(request: Request) -> FacadeSettings:
    return request.app.state.settings


def _forecaster(request: Request) -> Forecaster:
    return request.app.state.forecaster


def _predictor(request: Request) -> PredictorClient:
    return request.app.state.predictor


def _reloader(request: Request) -> Reloader:
    return request.app.state.reloader


def _jobs(request: Request) -> JobStore:
    return request.app.state.jobs


def _worker(request: Request) -> DeliveryWorker:
    return request.app.state.worker


def _allowlist(request: Request) -> Allowlist:
    return request.app.state.allowlist


SettingsDep = Annotated[FacadeSettings, Depends(_settings)]
ForecasterDep = Annotated[Forecaster, Depends(_forecaster)]
PredictorDep = Annotated[PredictorClient, Depends(_predictor)]
ReloaderDep = Annotated[Reloader, Depends(_reloader)]
JobsDep = Annotated[JobStore, Depends(_jobs)]
WorkerDep = Annotated[DeliveryWorker, Depends(_worker)]
AllowlistDep = Annotated[Allowlist, Depends(_allowlist)]


def require_token(settings: SettingsDep, authorization: Annotated[str | None, Header()] = None) -> None:
    """Bearer API_TOKEN on mutating endpoints, when one is configured."""
    check_bearer(
        settings.api_token, authorization, "this endpoint needs the header Authorization: Bearer <API_TOKEN>"
    )


TokenDep = Depends(require_token)
