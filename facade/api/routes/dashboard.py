"""GET /dashboard: the stitched champion backtest as a new user needs to see it.

Over the champion's hours the page shows the actual close, the point forecast inside its 80% band
(10%..90% quantiles), a marker labelled with the alias where each stitched version takes over, and
a second panel with the cumulative error difference against persistence (rising where the model
gains), with range buttons and drag-zoom synced across both panels. The tables give, per alias and
overall, the point metrics beside persistence with the Diebold-Mariano test, and the interval's
coverage (overall and per ex-ante volatility tercile), width and pinball loss beside the naive band.
Without a forecast (predictor or MLflow down) the page still shows the market over the /btc-info
period and says what is missing.

The chart is drawn by facade/static/chart.js with uPlot 1.6.32 (MIT), vendored as
facade/static/uPlot.iife.min.js (+ uPlot.min.css, uPlot.LICENSE) so the page needs no CDN and no
npm at runtime. Why a library rather than the former hand-written SVG: bands between two series,
drag-zoom, a synced cursor across two panels and a live legend with values are built in, and these
are what a static SVG of 3,000 points per series lacked (at the full range the lines cannot be told
apart). uPlot is 51 kB minified, has no dependencies and draws on canvas. To refresh it (the version
is pinned, with its integrity hash, by package.json and package-lock.json at the repo root):
``npm ci --ignore-scripts && npm run vendor`` (copies the three files), then delete node_modules.

Everything the chart draws comes from ``page_data``, a plain function; the route only fetches.
"""

from __future__ import annotations

import html
import json
import math
from importlib.resources import files
from string import Template
from typing import Any

import numpy as np
import pandas as pd
from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from btcforecast.errors import ProjectError
from btcforecast.evaluation import BacktestReport, actual_and_previous
from facade.api.deps import ForecasterDep
from facade.forecasts import INFO_END, INFO_START, Forecast

router = APIRouter(tags=["dashboard"])
HOUR = pd.Timedelta(hours=1)


# --- page data (plain functions) -------------------------------------------------------------
def cumulative_gain(actual: np.ndarray, predicted: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Running sum of |persistence error| - |model error| (USD): rising where the model beats persistence.

    Persistence predicts the previous close. The last value is n * (persistence MAE - model MAE).
    """
    actual = np.asarray(actual, dtype=np.float64)
    gain = np.abs(np.asarray(previous, dtype=np.float64) - actual) - np.abs(
        np.asarray(predicted, dtype=np.float64) - actual
    )
    return np.cumsum(gain)


def _json_values(values: np.ndarray, digits: int = 2) -> list[float | None]:
    return [None if not math.isfinite(v) else round(v, digits) for v in values.tolist()]


def page_data(closes: pd.Series, forecast: Forecast | None) -> dict[str, Any]:
    """What chart.js draws: one entry per displayed hour, null where there is nothing to draw.

    ``closes`` must hold the bar before the forecast's first hour (persistence's forecast for it).
    With a forecast the hours are the champion's (forecast.start .. forecast.end), else all of
    ``closes``. Keys: ``t`` (unix seconds, UTC), ``close``, ``prediction``, ``lower``, ``upper``
    (the 80% interval; null for point-only versions), ``gain`` (``cumulative_gain`` over the predicted
    hours) and ``boundaries`` (where each alias's part starts: unix seconds, alias, version).
    """
    shown = closes if forecast is None else closes.loc[forecast.start : forecast.end]
    n = len(shown)
    prediction, lower, upper = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    gain = np.full(n, np.nan)
    boundaries: list[dict[str, Any]] = []
    if forecast is not None:
        for part in forecast.parts:
            at = shown.index.get_indexer(part.hours)
            if (at < 0).any():
                raise ValueError(f"{part.alias}: predicted hours missing from the closes")
            prediction[at] = part.predictions
            if part.lower is not None and part.upper is not None:
                lower[at], upper[at] = part.lower, part.upper
            boundaries.append(
                {"t": int(part.hours[0].timestamp()), "alias": part.alias, "version": part.version}
            )
        hours = shown.index[np.isfinite(prediction)]
        actual, previous = actual_and_previous(closes, hours)
        gain[shown.index.get_indexer(hours)] = cumulative_gain(
            actual, prediction[np.isfinite(prediction)], previous
        )
    return {
        "t": [int(ts.timestamp()) for ts in shown.index],
        "close": _json_values(shown.to_numpy(dtype=np.float64)),
        "prediction": _json_values(prediction),
        "lower": _json_values(lower),
        "upper": _json_values(upper),
        "gain": _json_values(gain),
        "boundaries": boundaries,
    }


# --- tables ---------------------------------------------------------------------------------
def _fmt(value: float | None, digits: int = 2, scale: float = 1.0) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value * scale:,.{digits}f}"


def _cells(cells: list[tuple[str, str]]) -> str:
    return "<tr>" + "".join(f'<td data-col="{col}">{value}</td>' for col, value in cells) + "</tr>"


def _point_row(label: str, version: str, period: str, report: BacktestReport) -> str:
    m, p, dm = report.model, report.persistence, report.significance
    ratio = m.mae / p.mae if p.mae > 0 else math.nan
    return _cells(
        [
            ("alias", html.escape(label)),
            ("version", html.escape(version)),
            ("period", period),
            ("hours", str(m.n)),
            ("mae", _fmt(m.mae)),
            ("mae_persistence", _fmt(p.mae)),
            ("mae_ratio", _fmt(ratio, 3)),
            ("rmse", _fmt(m.rmse)),
            ("rmse_persistence", _fmt(p.rmse)),
            ("mape", _fmt(m.mape, 3)),
            ("direction", _fmt(m.directional_accuracy, 1, 100)),
            ("flat", _fmt(m.flat_share, 1, 100)),
            ("dm_p", "n/a" if dm is None else f"{dm.p_value:.3g}"),
            ("dm_better", "n/a" if dm is None else dm.better),
        ]
    )


def _interval_row(label: str, version: str, report: BacktestReport) -> str:
    iv, band = report.interval, report.naive_band
    by_vol = iv.coverage_by_volatility if iv is not None else {}
    return _cells(
        [
            ("alias", html.escape(label)),
            ("version", html.escape(version)),
            ("coverage", _fmt(iv.coverage if iv else None, 1, 100)),
            ("coverage_calm", _fmt(by_vol.get("calm"), 1, 100)),
            ("coverage_normal", _fmt(by_vol.get("normal"), 1, 100)),
            ("coverage_volatile", _fmt(by_vol.get("volatile"), 1, 100)),
            ("width", _fmt(iv.mean_width if iv else None, 0)),
            ("pinball", _fmt(iv.pinball if iv else None)),
            ("band_coverage", _fmt(band.coverage if band else None, 1, 100)),
            ("band_pinball", _fmt(band.pinball if band else None)),
            ("pinball_ratio", _fmt(report.pinball_ratio, 3)),
        ]
    )


POINT_HEAD = (
    "<tr><th>alias</th><th>version</th><th>period</th><th>hours</th><th>MAE</th><th>MAE persist.</th>"
    '<th title="model MAE / persistence MAE (below 1: better)">MAE ratio</th><th>RMSE</th>'
    "<th>RMSE persist.</th><th>MAPE %</th>"
    '<th title="on hours where the price moved">direction %</th>'
    '<th title="forecasts equal to the last close">flat %</th>'
    '<th title="Diebold-Mariano vs persistence, absolute loss">DM p</th><th>better (5%)</th></tr>'
)
INTERVAL_HEAD = (
    '<tr><th>alias</th><th>version</th><th title="share of hours inside the 10%..90% interval">'
    "80% coverage %</th><th>calm %</th><th>normal %</th><th>volatile %</th><th>mean width</th>"
    "<th>pinball</th><th>naive band coverage %</th><th>naive band pinball</th>"
    '<th title="model pinball / naive band pinball (below 1: better)">pinball ratio</th></tr>'
)


def metrics_tables(forecast: Forecast | None, problem: str | None) -> str:
    """The point table (vs persistence) and the interval table (vs the naive band), per alias and overall."""
    if forecast is None:
        return f'<p class="warn">No predictions: {html.escape(problem or "unknown error")}</p>'
    rows = [
        (p.alias, p.version, f"{p.hours[0]:%Y-%m-%d} .. {p.hours[-1]:%Y-%m-%d}", p.metrics)
        for p in forecast.parts
    ]
    rows.append(("overall", "", f"{forecast.start:%Y-%m-%d} .. {forecast.end:%Y-%m-%d}", forecast.overall))
    point = "".join(_point_row(*row) for row in rows)
    interval = "".join(_interval_row(alias, version, report) for alias, version, _, report in rows)
    return (
        "<h2>Point forecast (median) vs persistence</h2>"
        f'<table id="metrics">{POINT_HEAD}{point}</table>'
        "<h2>80% interval (10%..90%) vs the naive band</h2>"
        '<p class="note">Coverage per tercile of ex-ante volatility; the naive band is the last close '
        "times the previous 30 days' empirical hourly return quantiles.</p>"
        f'<table id="intervals">{INTERVAL_HEAD}{interval}</table>'
    )


def summary(forecast: Forecast | None) -> str:
    """One sentence on the overall figures, in words a new user reads first."""
    if forecast is None:
        return ""
    report = forecast.overall
    m, p, dm = report.model, report.persistence, report.significance
    parts = [f"Over {m.n:,} hours: point MAE {_fmt(m.mae)} vs persistence {_fmt(p.mae)}"]
    if p.mae > 0:
        parts[0] += f" (ratio {m.mae / p.mae:.3f})"
    if dm is not None:
        verdict = {"model": "the model is better", "baseline": "persistence is better"}.get(
            dm.better, "no significant difference"
        )
        parts.append(f"Diebold-Mariano p = {dm.p_value:.3g}: {verdict}")
    if report.interval is not None:
        iv = report.interval
        text = f"80% interval coverage {_fmt(iv.coverage, 1, 100)}%, mean width {_fmt(iv.mean_width, 0)}"
        if report.pinball_ratio is not None and math.isfinite(report.pinball_ratio):
            change = (1 - report.pinball_ratio) * 100
            text += f", pinball {abs(change):.1f}% {'below' if change >= 0 else 'above'} the naive band"
        parts.append(text)
    else:
        parts.append("point-only versions: no interval")
    return f'<p id="summary">{html.escape("; ".join(parts))}.</p>'


# --- route ----------------------------------------------------------------------------------
@router.get("/dashboard", response_class=HTMLResponse)
async def get_dashboard(forecaster: ForecasterDep) -> HTMLResponse:
    forecast: Forecast | None = None
    problem: str | None = None
    try:
        forecast = await forecaster.champion()
    except ProjectError as e:
        problem = str(e)
    if forecast is None:
        bars = await forecaster.bars(INFO_START, INFO_END)
        shown = bars.index
    else:  # the bar before the first hour is persistence's forecast for it
        bars = await forecaster.bars(forecast.start - HOUR, forecast.end)
        shown = bars.loc[forecast.start :].index
    source = str(bars.attrs.get("source") or "unknown")
    page = Template(files("facade").joinpath("templates/dashboard.html").read_text()).substitute(
        period=f"{shown[0]:%Y-%m-%d %H:%M} .. {shown[-1]:%Y-%m-%d %H:%M} UTC",
        source=html.escape(source),
        warning='<span class="warn">(synthetic data)</span>' if source == "synthetic" else "",
        summary=summary(forecast),
        tables=metrics_tables(forecast, problem),
        data=json.dumps(page_data(bars["close"], forecast)).replace("</", "<\\/"),
        static="static",  # relative, so the page works behind an ingress path too
    )
    return HTMLResponse(page)
