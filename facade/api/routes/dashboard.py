"""GET /dashboard: BTC close against the champion's predictions over the /btc-info period.

The page is self-contained: data embedded as JSON, drawn by facade/static/chart.js (no CDN). When
the predictor or MLflow is down the page still shows the market and says what is missing.
"""

from __future__ import annotations

import html
import json
from importlib.resources import files
from string import Template

import numpy as np
from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from btcforecast.errors import DependencyUnavailable
from facade.api.deps import ForecasterDep
from facade.api.format import iso_hours
from facade.backtest import MetricPair
from facade.forecasts import INFO_END, INFO_START, Forecast

router = APIRouter(tags=["dashboard"])


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def _row(label: str, version: str, period: str, pair: MetricPair) -> str:
    m, p = pair.model, pair.persistence
    cells = [
        html.escape(label),
        html.escape(version),
        period,
        str(m.n),
        _fmt(m.mae),
        _fmt(p.mae),
        _fmt(m.rmse),
        _fmt(p.rmse),
        _fmt(m.mape, 3),
        _fmt(p.mape, 3),
        _fmt(m.directional_accuracy * 100, 1),
        _fmt(p.directional_accuracy * 100, 1),
    ]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def metrics_table(forecast: Forecast | None, problem: str | None) -> str:
    if forecast is None:
        return f'<p class="warn">No predictions: {html.escape(problem or "unknown error")}</p>'
    head = (
        "<tr><th>alias</th><th>version</th><th>period</th><th>hours</th><th>MAE</th><th>MAE persist.</th>"
        "<th>RMSE</th><th>RMSE persist.</th><th>MAPE %</th><th>MAPE persist. %</th>"
        "<th>direction %</th><th>direction persist. %</th></tr>"
    )
    rows = [
        _row(p.alias, p.version, f"{p.hours[0]:%Y-%m-%d} .. {p.hours[-1]:%Y-%m-%d}", p.metrics)
        for p in forecast.parts
    ]
    rows.append(
        _row("overall", "", f"{forecast.start:%Y-%m-%d} .. {forecast.end:%Y-%m-%d}", forecast.overall)
    )
    return f'<table id="metrics">{head}{"".join(rows)}</table>'


@router.get("/dashboard", response_class=HTMLResponse)
async def get_dashboard(forecaster: ForecasterDep) -> HTMLResponse:
    bars = await forecaster.bars(INFO_START, INFO_END)
    forecast: Forecast | None = None
    problem: str | None = None
    try:
        forecast = await forecaster.champion()
    except (DependencyUnavailable, LookupError, ValueError) as e:
        problem = str(e)
    predicted = bars["close"].to_numpy() * np.nan
    if forecast is not None:
        position = {t: i for i, t in enumerate(bars.index)}
        for part in forecast.parts:
            for t, v in zip(part.hours, part.predictions, strict=True):
                i = position.get(t)
                if i is not None:
                    predicted[i] = float(v)
    data = {
        "times": iso_hours(bars.index),
        "close": [round(v, 2) for v in bars["close"].tolist()],
        "prediction": [None if np.isnan(v) else round(float(v), 2) for v in predicted],
    }
    source = str(bars.attrs.get("source") or "unknown")
    page = Template(files("facade").joinpath("templates/dashboard.html").read_text()).substitute(
        period=f"{bars.index[0]:%Y-%m-%d %H:%M} .. {bars.index[-1]:%Y-%m-%d %H:%M} UTC",
        source=html.escape(source),
        warning='<span class="warn">(synthetic data)</span>' if source == "synthetic" else "",
        table=metrics_table(forecast, problem),
        data=json.dumps(data).replace("</", "<\\/"),
        static="static",  # relative, so the page works behind an ingress path too
    )
    return HTMLResponse(page)
